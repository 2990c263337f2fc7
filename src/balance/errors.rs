//! The balance's errors as problem documents.

use super::service::BalanceError;
use crate::http::problem::{error_codes, problem_by_value};
use crate::http::{ErrorCode, Problem};

error_codes! {
    InvalidAmount "INVALID_AMOUNT" BAD_REQUEST: "the amount is out of 1..=the per-charge maximum";
    BalanceLimitExceeded "BALANCE_LIMIT_EXCEEDED" CONFLICT: "the balance would pass the maximum balance";
}

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
