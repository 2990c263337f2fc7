//! Webhook errors as problem documents: the toolkit's codes suffice.

use super::service::WebhookError;
use crate::http::problem::problem_by_value;
use crate::http::{ErrorCode, Problem};

impl From<&WebhookError> for Problem {
    fn from(error: &WebhookError) -> Self {
        let code = match error {
            WebhookError::Invalid(_) => ErrorCode::ValidationFailed,
            WebhookError::NotFound(_) | WebhookError::DeliveryNotFound(_) => ErrorCode::NotFound,
            WebhookError::Db(e) => return e.into(),
        };
        Problem::new(code, error.to_string())
    }
}

problem_by_value!(WebhookError);
