//! The coupons' errors and their problem documents.

use thiserror::Error;

use crate::http::problem::{error_codes, problem_by_value};
use crate::http::{ErrorCode, Problem};
use crate::ids::CouponId;
use crate::store::StoreError;

error_codes! {
    CouponNotFound "COUPON_NOT_FOUND" NOT_FOUND: "no such coupon";
    CouponSoldOut "COUPON_SOLD_OUT" CONFLICT: "none left to issue";
    CouponAlreadyIssued "COUPON_ALREADY_ISSUED" CONFLICT: "the user already holds one (one per user per coupon)";
    CouponNotIssuable "COUPON_NOT_ISSUABLE" CONFLICT: "outside the issue window";
}

#[derive(Debug, Error)]
pub enum CouponError {
    #[error("coupon {0} does not exist")]
    NotFound(CouponId),
    #[error("coupon {0} is sold out")]
    SoldOut(CouponId),
    #[error("coupon {0} was already issued to this user")]
    AlreadyIssued(CouponId),
    #[error("coupon {0} cannot be issued now: {1}")]
    NotIssuable(CouponId, &'static str),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] StoreError),
}

crate::store::store_fault!(CouponError);

impl CouponError {
    /// The contract's error code, or the storage fault that decides the answer instead; also
    /// the `outcome` label of the issue metric.
    pub fn code(&self) -> Result<ErrorCode, &StoreError> {
        Ok(match self {
            CouponError::NotFound(_) => ErrorCode::CouponNotFound,
            CouponError::SoldOut(_) => ErrorCode::CouponSoldOut,
            CouponError::AlreadyIssued(_) => ErrorCode::CouponAlreadyIssued,
            CouponError::NotIssuable(..) => ErrorCode::CouponNotIssuable,
            CouponError::Invalid(_) => ErrorCode::ValidationFailed,
            CouponError::Db(fault) => return Err(fault),
        })
    }
}

impl From<&CouponError> for Problem {
    fn from(error: &CouponError) -> Self {
        match error.code() {
            Ok(code) => Problem::new(code, error.to_string()),
            Err(fault) => fault.into(),
        }
    }
}

problem_by_value!(CouponError);
