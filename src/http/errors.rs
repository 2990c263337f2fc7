//! Each module's errors as the contract's problem codes.

use axum::http::StatusCode;

use super::problem::Problem;
use crate::balance::BalanceError;
use crate::product::ProductError;

impl From<&BalanceError> for Problem {
    fn from(error: &BalanceError) -> Self {
        let detail = error.to_string();
        match error {
            BalanceError::InvalidAmount { .. } => {
                Problem::new(StatusCode::BAD_REQUEST, "INVALID_AMOUNT", detail)
            }
            BalanceError::LimitExceeded { .. } => {
                Problem::new(StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED", detail)
            }
            BalanceError::Idempotency(e) => Problem::from(e),
            BalanceError::Db(e) => Problem::from(e),
        }
    }
}

impl From<&ProductError> for Problem {
    fn from(error: &ProductError) -> Self {
        let detail = error.to_string();
        match error {
            ProductError::NotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND", detail)
            }
            ProductError::Invalid(_) => Problem::validation(detail),
            ProductError::Db(e) => Problem::from(e),
        }
    }
}

impl From<&crate::coupon::CouponError> for Problem {
    fn from(error: &crate::coupon::CouponError) -> Self {
        use crate::coupon::CouponError;
        let detail = error.to_string();
        match error {
            CouponError::NotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "COUPON_NOT_FOUND", detail)
            }
            CouponError::SoldOut(_) => {
                Problem::new(StatusCode::CONFLICT, "COUPON_SOLD_OUT", detail)
            }
            CouponError::AlreadyIssued(_) => {
                Problem::new(StatusCode::CONFLICT, "COUPON_ALREADY_ISSUED", detail)
            }
            CouponError::NotIssuable(..) => {
                Problem::new(StatusCode::CONFLICT, "COUPON_NOT_ISSUABLE", detail)
            }
            CouponError::Invalid(_) => Problem::validation(detail),
            CouponError::Db(e) => Problem::from(e),
        }
    }
}

impl From<&crate::order::OrderError> for Problem {
    fn from(error: &crate::order::OrderError) -> Self {
        use crate::order::OrderError;
        let detail = error.to_string();
        let code = error.code();
        match error {
            OrderError::Invalid(_) => Problem::new(StatusCode::BAD_REQUEST, code, detail),
            OrderError::ProductNotFound(_) | OrderError::NotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, code, detail)
            }
            OrderError::OutOfStock { .. }
            | OrderError::CouponNotUsable(..)
            | OrderError::InsufficientBalance { .. }
            | OrderError::NotCancellable(..) => Problem::new(StatusCode::CONFLICT, code, detail),
            OrderError::Idempotency(e) => Problem::from(e),
            OrderError::Db(e) => Problem::from(e),
        }
    }
}

impl From<&crate::platform::PlatformError> for Problem {
    fn from(error: &crate::platform::PlatformError) -> Self {
        use crate::platform::PlatformError;
        match error {
            PlatformError::Invalid(detail) => Problem::validation(detail.clone()),
            PlatformError::Db(e) => Problem::from(e),
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
    crate::coupon::CouponError,
    crate::order::OrderError,
    crate::platform::PlatformError
);
