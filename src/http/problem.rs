//! RFC 9457 problem documents: the one place where errors become HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::idempotency::IdempotencyError;
use crate::store::{Fault, StoreError};

/// An error as the client sees it.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub retry_after_secs: Option<u32>,
}

/// The body of every error response (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemBody {
    #[schema(example = "urn:commerce:problem:out-of-stock")]
    pub r#type: String,
    #[schema(example = "Out of stock")]
    pub title: String,
    #[schema(example = 409)]
    pub status: u16,
    #[schema(example = "product 3 has 1 left, 2 requested")]
    pub detail: String,
    #[schema(example = "OUT_OF_STOCK")]
    pub code: &'static str,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after_secs: None,
        }
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_FAILED", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", detail)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "an unexpected error occurred; it has been logged",
        )
    }

    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The body as sent, for answers that are stored and replayed.
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.body()).expect("problem serializes")
    }

    fn body(&self) -> ProblemBody {
        ProblemBody {
            r#type: format!(
                "urn:commerce:problem:{}",
                self.code.to_lowercase().replace('_', "-")
            ),
            title: title_of(self.code),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code,
        }
    }
}

/// `OUT_OF_STOCK` reads as "Out of stock".
fn title_of(code: &str) -> String {
    let words = code.to_lowercase().replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body_json()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Storage faults never become a 500 unless they are bugs: whatever the database could not do
/// now is a 503 the client may retry (with the same `Idempotency-Key`, safely).
impl From<&StoreError> for Problem {
    fn from(error: &StoreError) -> Self {
        let detail = match error.fault() {
            Fault::Transient => "the database stayed busy; retry shortly",
            Fault::LockHeld => {
                "a row this write needs is held by another session; it was not carried out, retry shortly"
            }
            Fault::Unavailable => "the database cannot store anything right now; retry shortly",
            Fault::OutcomeUnknown => {
                "the database connection broke while committing; retry with the same Idempotency-Key to learn the outcome"
            }
            Fault::UniqueViolation | Fault::Bug => {
                tracing::error!(%error, "storage failure");
                return Problem::internal();
            }
        };
        tracing::warn!(%error, "storage unavailable");
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", detail).retry_after(1)
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        (&error).into()
    }
}

impl From<&IdempotencyError> for Problem {
    fn from(error: &IdempotencyError) -> Self {
        match error {
            IdempotencyError::KeyReused => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                error.to_string(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_read_from_codes() {
        assert_eq!(title_of("OUT_OF_STOCK"), "Out of stock");
        assert_eq!(title_of("INTERNAL"), "Internal");
    }
}
