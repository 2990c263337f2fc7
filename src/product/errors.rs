//! The catalogue's errors as problem documents.

use super::service::ProductError;
use crate::http::problem::{error_codes, problem_by_value};
use crate::http::{ErrorCode, Problem};

error_codes! {
    ProductNotFound "PRODUCT_NOT_FOUND" NOT_FOUND: "no such product";
    ProductNotOnSale "PRODUCT_NOT_ON_SALE" CONFLICT: "a product's sale window has not opened or has closed at the order's decision; the detail names the product and the window";
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
