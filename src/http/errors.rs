//! Each module's errors as the contract's problem codes.

use super::problem::{ErrorCode, Problem};
use crate::balance::BalanceError;
use crate::coupon::CouponError;
use crate::order::OrderError;
use crate::platform::PlatformError;
use crate::product::ProductError;

impl From<&BalanceError> for Problem {
    fn from(error: &BalanceError) -> Self {
        let code = match error {
            BalanceError::InvalidAmount { .. } => ErrorCode::InvalidAmount,
            BalanceError::LimitExceeded { .. } => ErrorCode::BalanceLimitExceeded,
            BalanceError::Idempotency(e) => return e.into(),
            BalanceError::Db(e) => return e.into(),
        };
        Problem::new(code, error.to_string())
    }
}

impl From<&ProductError> for Problem {
    fn from(error: &ProductError) -> Self {
        let code = match error {
            ProductError::NotFound(_) => ErrorCode::ProductNotFound,
            ProductError::Invalid(_) => ErrorCode::ValidationFailed,
            ProductError::Db(e) => return e.into(),
        };
        Problem::new(code, error.to_string())
    }
}

impl From<&CouponError> for Problem {
    fn from(error: &CouponError) -> Self {
        let code = match error {
            CouponError::NotFound(_) => ErrorCode::CouponNotFound,
            CouponError::SoldOut(_) => ErrorCode::CouponSoldOut,
            CouponError::AlreadyIssued(_) => ErrorCode::CouponAlreadyIssued,
            CouponError::NotIssuable(..) => ErrorCode::CouponNotIssuable,
            CouponError::Invalid(_) => ErrorCode::ValidationFailed,
            CouponError::Db(e) => return e.into(),
        };
        Problem::new(code, error.to_string())
    }
}

impl From<&OrderError> for Problem {
    fn from(error: &OrderError) -> Self {
        match error.code() {
            Ok(code) => Problem::new(code, error.to_string()),
            Err(fault) => fault.into(),
        }
    }
}

impl From<&PlatformError> for Problem {
    fn from(error: &PlatformError) -> Self {
        match error {
            PlatformError::Invalid(detail) => Problem::validation(detail.clone()),
            PlatformError::Db(e) => e.into(),
        }
    }
}

/// Handlers answer owned errors with `?`.
macro_rules! by_value {
    ($($error:ty),*) => {$(
        impl From<$error> for Problem {
            fn from(error: $error) -> Self {
                (&error).into()
            }
        }
    )*};
}

by_value!(
    BalanceError,
    ProductError,
    CouponError,
    OrderError,
    PlatformError
);
