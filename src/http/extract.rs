//! Extractors that turn every malformed request into a `400 VALIDATION_FAILED` problem naming
//! what is wrong: JSON bodies, path ids, query strings, pagination and `Idempotency-Key`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::str::FromStr;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};
use utoipa::IntoParams;

use super::problem::Problem;
use super::strict_json;
use crate::bounds;
use crate::idempotency::IdempotencyKey;
use crate::page::{decode_cursor, PageRequest, CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON object body, deserialized strictly: no key twice in an object, integers exactly
/// integers as written (`15.0` and `1e3` are, as JSON Schema says; see `strict_json`), and
/// request types deny unknown fields.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let axum::Json(raw) = axum::Json::<Box<RawValue>>::from_request(req, state)
            .await
            .map_err(json_problem)?;
        let value = strict_json::read(&raw)
            .map_err(|e| Problem::validation(format!("invalid request body: {e}")))?;
        // serde would read a struct from an array of its fields too (`[]` as an empty patch).
        let kind = match &value {
            serde_json::Value::Object(_) => None,
            serde_json::Value::Array(_) => Some("array"),
            serde_json::Value::String(_) => Some("string"),
            serde_json::Value::Number(_) => Some("number"),
            serde_json::Value::Bool(_) => Some("boolean"),
            serde_json::Value::Null => Some("null"),
        };
        if let Some(kind) = kind {
            return Err(Problem::validation(format!(
                "invalid request body: invalid type: {kind}, expected a JSON object"
            )));
        }
        serde_path_to_error::deserialize(value)
            .map(Json)
            .map_err(|e| Problem::validation(format!("invalid request body: {e}")))
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
        JsonRejection::MissingJsonContentType(_) => {
            Problem::validation("the request body must be JSON with Content-Type: application/json")
                .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::validation(format!(
                "the request body is larger than {MAX_BODY_BYTES} bytes"
            ))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
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
                "path id must be a positive 64-bit integer written without sign or leading zero, got `{raw}`"
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
#[derive(Debug, Deserialize)]
pub struct PageParams {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl IntoParams for PageParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let cursor = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(CURSOR_PATTERN));
        vec![
            param("limit", ParameterIn::Query, false)
                .description(Some(format!(
                    "Items per page, 1..={MAX_LIMIT} (default {DEFAULT_LIMIT})."
                )))
                .schema(Some(bounds::int::<1, MAX_LIMIT>()))
                .build(),
            param("cursor", ParameterIn::Query, false)
                .description(Some(
                    "The `next_cursor` of the previous page (empty: the first page).",
                ))
                .schema(Some(cursor))
                .build(),
        ]
    }
}

fn param(name: &str, location: ParameterIn, required: bool) -> ParameterBuilder {
    let required = if required {
        Required::True
    } else {
        Required::False
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(required)
}

/// The page a list request asks for, read from `?limit=` and `?cursor=`.
pub struct Paging(pub PageRequest);

impl<S: Send + Sync> FromRequestParts<S> for Paging {
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
            Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
                Problem::validation("cursor must be the next_cursor of a previous page")
            })?),
        };
        Ok(Paging(PageRequest { limit, after }))
    }
}

/// The most characters an `Idempotency-Key` may have; each is printable ASCII.
pub use crate::idempotency::MAX_KEY_LEN as IDEMPOTENCY_KEY_MAX_LEN;

/// `Idempotency-Key` as the OpenAPI document states it: 1..=255 printable ASCII characters, not
/// starting or ending with a space (HTTP drops such spaces on the way, RFC 9110 §5.5).
pub struct IdempotencyKeyParam;

impl IntoParams for IdempotencyKeyParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(IDEMPOTENCY_KEY_MAX_LEN))
            .pattern(Some(format!(
                "^[!-~](?:[ -~]{{0,{}}}[!-~])?$",
                IDEMPOTENCY_KEY_MAX_LEN - 2
            )));
        vec![param("Idempotency-Key", ParameterIn::Header, false)
            .description(Some("A retry with the same key and body replays the first response; the same key with another body is 422 IDEMPOTENCY_KEY_REUSED."))
            .schema(Some(schema))
            .build()]
    }
}

/// The optional `Idempotency-Key` header, validated.
pub struct IdempotencyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let mut values = parts.headers.get_all("idempotency-key").iter();
        let Some(value) = values.next() else {
            return Ok(IdempotencyHeader(None));
        };
        let refused = || {
            Problem::validation(format!(
                "Idempotency-Key must be one header of 1 to {IDEMPOTENCY_KEY_MAX_LEN} printable ASCII characters"
            ))
        };
        if values.next().is_some() || value.len() > IDEMPOTENCY_KEY_MAX_LEN {
            return Err(refused());
        }
        IdempotencyKey::parse(value.as_bytes())
            .map(|key| IdempotencyHeader(Some(key)))
            .ok_or_else(refused)
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `201 Created` with the created thing as JSON.
pub struct Created<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Created<T> {
    fn into_response(self) -> axum::response::Response {
        (StatusCode::CREATED, axum::Json(self.0)).into_response()
    }
}

/// A path `{id}`: a positive 64-bit integer as a canonical decimal.
pub struct IdParam;

impl IntoParams for IdParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![param("id", ParameterIn::Path, true)
            .description(Some(
                "A positive 64-bit integer written without sign or leading zero (`01`, `+1`: 400).",
            ))
            .schema(Some(bounds::int::<1, { i64::MAX }>()))
            .build()]
    }
}
