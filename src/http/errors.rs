//! Each module's errors as the contract's problem codes.

use axum::http::StatusCode;

use super::problem::Problem;
use crate::balance::BalanceError;
use crate::product::ProductError;

impl From<BalanceError> for Problem {
    fn from(error: BalanceError) -> Self {
        let detail = error.to_string();
        match error {
            BalanceError::InvalidAmount { .. } => {
                Problem::new(StatusCode::BAD_REQUEST, "INVALID_AMOUNT", detail)
            }
            BalanceError::LimitExceeded { .. } => {
                Problem::new(StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED", detail)
            }
            BalanceError::Idempotency(e) => e.into(),
            BalanceError::Db(e) => e.into(),
        }
    }
}

impl From<ProductError> for Problem {
    fn from(error: ProductError) -> Self {
        let detail = error.to_string();
        match error {
            ProductError::NotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND", detail)
            }
            ProductError::Invalid(_) => Problem::validation(detail),
            ProductError::Db(e) => e.into(),
        }
    }
}
