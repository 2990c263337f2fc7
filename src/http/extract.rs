//! Extractors that turn every malformed request into a `400 VALIDATION_FAILED` problem naming
//! what is wrong: JSON bodies, path ids, query strings, pagination and `Idempotency-Key`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::str::FromStr;
use utoipa::IntoParams;

use super::problem::Problem;
use crate::idempotency::IdempotencyKey;
use crate::page::{decode_cursor, PageRequest, DEFAULT_LIMIT, MAX_LIMIT};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body, deserialized strictly (request types deny unknown fields).
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            Problem::validation(format!("invalid request body: {}", source_text(&e)))
        }
        JsonRejection::JsonSyntaxError(e) => {
            Problem::validation(format!("malformed JSON: {}", source_text(&e)))
        }
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "VALIDATION_FAILED",
            "the request body must be JSON with Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::validation(format!(
                "the request body is larger than {MAX_BODY_BYTES} bytes"
            ))
        }
        other => Problem::validation(format!("unreadable request body: {}", other.body_text())),
    }
}

/// serde's message (with the path to the offending field), without axum's prefix.
fn source_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text = inner.to_string();
        source = inner.source();
    }
    text
}

/// A path parameter parsed into an id type; anything else is a 400, never a 404 or 500.
pub struct PathId<T>(pub T);

impl<S: Send + Sync, T: FromStr> FromRequestParts<S> for PathId<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Problem::validation(format!("bad path parameter: {}", e.body_text())))?;
        raw.parse().map(PathId).map_err(|_| {
            Problem::validation(format!(
                "path id must be a positive 64-bit integer, got `{raw}`"
            ))
        })
    }
}

/// A query string deserialized into `T`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| {
                Problem::validation(format!("invalid query: {}", source_text(&e)))
            })
    }
}

/// `?limit=` (1..=100, default 20) and `?cursor=` from a previous page's `next_cursor`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageRequest {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Query(params) = Query::<PageParams>::from_request_parts(parts, state).await?;
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Problem::validation(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}"
            )));
        }
        let after = match params.cursor.as_deref() {
            None | Some("") => None,
            Some(cursor) => Some(
                decode_cursor(cursor).ok_or_else(|| Problem::validation("cursor is not valid"))?,
            ),
        };
        Ok(PageRequest { limit, after })
    }
}

/// The optional `Idempotency-Key` header, validated.
pub struct IdempotencyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyHeader(None));
        };
        IdempotencyKey::parse(value.as_bytes())
            .map(|key| IdempotencyHeader(Some(key)))
            .ok_or_else(|| {
                Problem::validation("Idempotency-Key must be 1 to 255 printable ASCII characters")
            })
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}
