//! Every code the API answers with, from the toolkit and each capability, for the OpenAPI
//! document's `ProblemBody.code` (in this order).

use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, RefOr};

use crate::http::ErrorCode;

impl ErrorCode {
    pub const ALL: &[ErrorCode] = &[
        // The toolkit's.
        ErrorCode::ValidationFailed,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        // balance
        ErrorCode::InvalidAmount,
        ErrorCode::BalanceLimitExceeded,
        // product
        ErrorCode::ProductNotFound,
        ErrorCode::ProductNotOnSale,
        // coupon
        ErrorCode::CouponNotFound,
        ErrorCode::CouponSoldOut,
        ErrorCode::CouponAlreadyIssued,
        ErrorCode::CouponNotIssuable,
        // order
        ErrorCode::InvalidOrder,
        ErrorCode::OutOfStock,
        ErrorCode::PurchaseLimitExceeded,
        ErrorCode::CouponNotUsable,
        ErrorCode::InsufficientBalance,
        ErrorCode::OrderNotFound,
        ErrorCode::OrderNotCancellable,
        // The toolkit's idempotency.
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::IdempotencyKeyInUse,
    ];
}

/// Lists every code in the document's `ErrorCode` schema.
pub(super) fn document_codes(openapi: &mut OpenApi) {
    let schema = openapi
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("ErrorCode"));
    let Some(RefOr::T(Schema::Object(codes))) = schema else {
        panic!("ErrorCode is not in the OpenAPI document");
    };
    codes.enum_values = Some(ErrorCode::ALL.iter().map(|c| c.as_str().into()).collect());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Problem;
    use axum::http::header;
    use axum::response::IntoResponse;

    #[test]
    fn codes_are_distinct_and_carry_retry_after_as_listed() {
        let names: std::collections::HashSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        let retried: Vec<_> = ErrorCode::ALL
            .iter()
            .filter(|c| c.retries())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            retried,
            ["RATE_LIMITED", "UNAVAILABLE", "IDEMPOTENCY_KEY_IN_USE"]
        );
        let problem = Problem::new(ErrorCode::RateLimited, "slow down").retry_after(3);
        assert_eq!(problem.into_response().headers()[header::RETRY_AFTER], "3");
    }
}
