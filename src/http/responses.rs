//! The error answers of each operation, for its OpenAPI `responses(...)`: every code it can
//! answer, grouped by status, each with what it means there, an example problem document, and
//! the headers that come with it. Declared with `problems!`, from the declared `ErrorCode`s.

use axum::http::StatusCode;
use std::collections::BTreeMap;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, Object, Ref, RefOr, Type};
use utoipa::IntoResponses;

use super::problem::{ErrorCode, Problem};

/// Declares a type whose `IntoResponses` are the problems an operation can answer: the codes
/// every operation for its callers answers (`for PUBLIC`, `SIGNED_IN`, `USER_WRITE`,
/// `KEYED_WRITE`, `ADMIN`, `ADMIN_KEYED_WRITE`), then its own, each optionally with what it
/// means for that operation (else its general meaning).
macro_rules! problems {
    ($name:ident for $callers:ident { $($code:ident $(: $why:expr)?),* $(,)? }) => {
        struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                let own = [$(
                    ($crate::http::ErrorCode::$code, [$($why)?].first().copied()),
                )*];
                $crate::http::responses::problem_responses(&own, $crate::http::responses::$callers)
            }
        }
    };
}
pub(crate) use problems;

/// Anyone: the server may be unable to answer.
pub const PUBLIC: &[ErrorCode] = &[ErrorCode::Unavailable];
/// A bearer token is needed.
pub const SIGNED_IN: &[ErrorCode] = &[ErrorCode::Unauthorized, ErrorCode::Unavailable];
/// A user's write, under the per-user write limit.
pub const USER_WRITE: &[ErrorCode] = &[
    ErrorCode::Unauthorized,
    ErrorCode::RateLimited,
    ErrorCode::Unavailable,
];
/// A user's write that honours `Idempotency-Key`.
pub const KEYED_WRITE: &[ErrorCode] = &[
    ErrorCode::Unauthorized,
    ErrorCode::RateLimited,
    ErrorCode::IdempotencyKeyInUse,
    ErrorCode::IdempotencyKeyReused,
    ErrorCode::Unavailable,
];
/// The admin API.
pub const ADMIN: &[ErrorCode] = &[
    ErrorCode::Unauthorized,
    ErrorCode::Forbidden,
    ErrorCode::Unavailable,
];
/// An admin write that honours `Idempotency-Key`.
pub const ADMIN_KEYED_WRITE: &[ErrorCode] = &[
    ErrorCode::Unauthorized,
    ErrorCode::Forbidden,
    ErrorCode::IdempotencyKeyInUse,
    ErrorCode::IdempotencyKeyReused,
    ErrorCode::Unavailable,
];

/// The responses for an operation's own codes and those of its callers, one per status.
pub fn problem_responses(
    own: &[(ErrorCode, Option<&str>)],
    callers: &[ErrorCode],
) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<Problem>> = BTreeMap::new();
    let callers = callers.iter().map(|&code| (code, None));
    for (code, why) in own.iter().copied().chain(callers) {
        by_status
            .entry(code.status().as_u16())
            .or_default()
            .push(Problem::new(code, why.unwrap_or(code.about())));
    }
    by_status
        .into_iter()
        .map(|(status, problems)| (status.to_string(), response(&problems).into()))
        .collect()
}

/// One status's answer, from example problems whose detail says what each code means there:
/// the codes in the description and as named examples (an example's name is its code, so tools
/// and tests can read which codes an operation answers).
fn response(problems: &[Problem]) -> Response {
    let description = problems
        .iter()
        .map(|p| format!("`{}`: {}", p.code.as_str(), p.detail))
        .collect::<Vec<_>>()
        .join("\n\n");
    let examples = problems.iter().map(|p| {
        let body = serde_json::to_value(p.body()).expect("problems serialize");
        let example = ExampleBuilder::new().summary(&p.detail).value(Some(body));
        (p.code.as_str(), example.build())
    });
    let mut response = ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ProblemBody")))
            .examples_from_iter(examples)
            .build(),
    );
    if problems.iter().any(|p| p.retry_after_secs.is_some()) {
        response = response.header(
            "Retry-After",
            header("seconds to wait before a retry", Type::Integer),
        );
    }
    if problems
        .iter()
        .any(|p| [ErrorCode::Unauthorized, ErrorCode::Forbidden].contains(&p.code))
    {
        response = response.header(
            "WWW-Authenticate",
            header(
                r#"RFC 6750 challenge, e.g. `Bearer realm="commerce", error="invalid_token", error_description="the token has expired"`"#,
                Type::String,
            ),
        );
    }
    response.build()
}

fn header(description: &str, schema: Type) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Object::with_type(schema))
        .description(Some(description))
        .build()
}

/// 413 and 415 on every operation that reads a JSON body.
pub struct BodyFaults;

impl IntoResponses for BodyFaults {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            Problem::validation(format!(
                "the body is larger than {} bytes",
                super::extract::MAX_BODY_BYTES
            ))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE),
            Problem::validation("the body is not sent as `Content-Type: application/json`")
                .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ]
        .into_iter()
        .map(|p| (p.status.as_str().to_owned(), response(&[p]).into()))
        .collect()
    }
}

/// What `VALIDATION_FAILED` means on the operations that take a page.
pub const BAD_PAGE: &str = "a bad `limit` or `cursor`";

/// What `VALIDATION_FAILED` means on the operations that take only a path id.
pub const BAD_ID: &str = "the id is not a positive 64-bit integer";
