//! RFC 9457 problem documents: the one place where errors become HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::idempotency::IdempotencyError;
use crate::store::{Fault, StoreError};

/// A code the API answers with: its name, its status, whether its answer carries
/// `Retry-After`, and what it means. Problems are built from it and the OpenAPI document states
/// it (`ProblemBody.code`'s enum, each operation's answers), so the two cannot drift. The
/// toolkit declares the generic codes below; each capability declares its own in its
/// `errors.rs`, with `error_codes!`; `app` lists them all (`ErrorCode::ALL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode {
    name: &'static str,
    status: StatusCode,
    retries: bool,
    about: &'static str,
}

impl ErrorCode {
    pub const fn declare(
        name: &'static str,
        status: StatusCode,
        retries: bool,
        about: &'static str,
    ) -> Self {
        ErrorCode {
            name,
            status,
            retries,
            about,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.name
    }

    pub fn status(self) -> StatusCode {
        self.status
    }

    /// Whether the answer says when to retry (`Retry-After`).
    pub fn retries(self) -> bool {
        self.retries
    }

    /// What the code means, for the OpenAPI document.
    pub fn about(self) -> &'static str {
        self.about
    }
}

/// Declares codes as `ErrorCode::Name`: the code, its status, `+ RetryAfter` when its answer
/// says when to retry, and what it means.
macro_rules! error_codes {
    ($($variant:ident $code:literal $status:ident $(+ $retry:ident)?: $about:literal;)*) => {
        #[allow(non_upper_case_globals)]
        impl $crate::http::ErrorCode {
            $(
                pub const $variant: $crate::http::ErrorCode = $crate::http::ErrorCode::declare(
                    $code,
                    axum::http::StatusCode::$status,
                    false $(|| { let _ = stringify!($retry); true })?,
                    $about,
                );
            )*
        }
    };
}
pub(crate) use error_codes;

error_codes! {
    ValidationFailed "VALIDATION_FAILED" BAD_REQUEST: "a malformed body, a wrong type, an unknown, missing or null field, or a bad path id, query parameter or header; the detail names it";
    Unauthorized "UNAUTHORIZED" UNAUTHORIZED: "the bearer token is missing, malformed, expired, not yet valid or badly signed";
    Forbidden "FORBIDDEN" FORBIDDEN: "the token is valid but has no `role: \"admin\"`";
    NotFound "NOT_FOUND" NOT_FOUND: "no such route";
    MethodNotAllowed "METHOD_NOT_ALLOWED" METHOD_NOT_ALLOWED: "the route does not take this method; `Allow` lists those it takes";
    RateLimited "RATE_LIMITED" TOO_MANY_REQUESTS + RetryAfter: "this user sent more writes than the per-user limit allows; nothing was done, retry after `Retry-After`";
    Unavailable "UNAVAILABLE" SERVICE_UNAVAILABLE + RetryAfter: "the request ran past the server's deadline, or the database could not serve it; retry after `Retry-After` (a write retried with its Idempotency-Key has one effect)";
    Internal "INTERNAL" INTERNAL_SERVER_ERROR: "an unexpected error; it has been logged";
    IdempotencyKeyReused "IDEMPOTENCY_KEY_REUSED" UNPROCESSABLE_ENTITY: "the Idempotency-Key was used with another request";
    IdempotencyKeyInUse "IDEMPOTENCY_KEY_IN_USE" CONFLICT + RetryAfter: "the first request with this Idempotency-Key is still in flight; retry after `Retry-After` to get its answer";
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        // The enum of every code is filled in by `app`, which knows them all.
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("What went wrong, for clients to branch on."))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// An error as the client sees it.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: ErrorCode,
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
    pub code: ErrorCode,
}

impl Problem {
    /// The code's problem, with its status; codes that carry `Retry-After` say 1 s unless told.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            detail: detail.into(),
            retry_after_secs: code.retries().then_some(1),
        }
    }

    /// The same problem with another status (a body too large, of the wrong type).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, detail)
    }

    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
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

    pub(crate) fn body(&self) -> ProblemBody {
        let code = self.code.as_str();
        ProblemBody {
            r#type: format!(
                "urn:commerce:problem:{}",
                code.to_lowercase().replace('_', "-")
            ),
            title: title_of(code),
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
        Problem::new(ErrorCode::Unavailable, detail)
    }
}

/// Answers a capability's owned error with `?`, through its `From<&Error> for Problem`.
macro_rules! problem_by_value {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for $crate::http::Problem {
            fn from(error: $error) -> Self {
                (&error).into()
            }
        }
    )*};
}
pub(crate) use problem_by_value;

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        (&error).into()
    }
}

impl From<&IdempotencyError> for Problem {
    fn from(error: &IdempotencyError) -> Self {
        match error {
            IdempotencyError::KeyReused => {
                Problem::new(ErrorCode::IdempotencyKeyReused, error.to_string())
            }
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
