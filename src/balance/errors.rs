//! The balance's errors as problem documents.

use super::service::BalanceError;
use crate::http::problem::problem_by_value;
use crate::http::{ErrorCode, Problem};

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

problem_by_value!(BalanceError);
