//! The catalogue's errors as problem documents.

use super::service::ProductError;
use crate::http::problem::{error_codes, problem_by_value};
use crate::http::{ErrorCode, Problem};

error_codes! {
    ProductNotFound "PRODUCT_NOT_FOUND" NOT_FOUND: "no such product";
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

problem_by_value!(ProductError);
