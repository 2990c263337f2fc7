//! The error answers many operations share, for their OpenAPI `responses(...)`: the status, what
//! it means, the problem document and the headers that come with it.

use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, Object, Ref, RefOr, Type};
use utoipa::IntoResponses;

fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        Content::new(Some(Ref::from_schema_name("ProblemBody"))),
    )
}

fn header(description: &str, schema: Type) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Object::with_type(schema))
        .description(Some(description))
        .build()
}

fn one(status: u16, response: ResponseBuilder) -> BTreeMap<String, RefOr<Response>> {
    BTreeMap::from([(status.to_string(), response.build().into())])
}

/// 401 on every operation that needs a token.
pub struct Unauthorized;

impl IntoResponses for Unauthorized {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            401,
            problem("UNAUTHORIZED: the bearer token is missing, malformed, expired, not yet valid or badly signed")
                .header(
                    "WWW-Authenticate",
                    header(
                        r#"RFC 6750 challenge, e.g. `Bearer realm="commerce", error="invalid_token", error_description="the token has expired"`"#,
                        Type::String,
                    ),
                ),
        )
    }
}

/// 403 on the admin API.
pub struct Forbidden;

impl IntoResponses for Forbidden {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            403,
            problem("FORBIDDEN: the token is valid but has no `role: \"admin\"`").header(
                "WWW-Authenticate",
                header(
                    r#"`Bearer realm="commerce", error="insufficient_scope", ...`"#,
                    Type::String,
                ),
            ),
        )
    }
}

/// 413 and 415 on every operation that reads a JSON body.
pub struct BodyFaults;

impl IntoResponses for BodyFaults {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = one(
            413,
            problem(&format!(
                "VALIDATION_FAILED: the body is larger than {} bytes",
                super::extract::MAX_BODY_BYTES
            )),
        );
        responses.extend(one(
            415,
            problem("VALIDATION_FAILED: the body is not sent as `Content-Type: application/json`"),
        ));
        responses
    }
}

/// 429 on every write of a user that is rate limited (`COMMERCE_USER_WRITES_PER_SECOND`).
pub struct RateLimited;

impl IntoResponses for RateLimited {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            429,
            problem("RATE_LIMITED: this user sent more writes than the per-user limit allows; nothing was done, retry after `Retry-After`")
                .header("Retry-After", header("seconds to wait before a retry", Type::Integer)),
        )
    }
}

/// 503 on every operation: the request ran past the server's deadline, or the database could not
/// serve it.
pub struct Unavailable;

impl IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            503,
            problem("UNAVAILABLE: the request ran past the server's deadline, or the database could not serve it; retry after `Retry-After` (a write retried with its Idempotency-Key has one effect)")
                .header("Retry-After", header("seconds to wait before a retry", Type::Integer)),
        )
    }
}
