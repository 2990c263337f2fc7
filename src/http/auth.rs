//! Bearer JWT authentication (HS256), read strictly: `sub` is the user id as a canonical
//! decimal, `exp` is required, `nbf` is honoured, `role: "admin"` grants the admin API. Every
//! refusal carries the RFC 6750 `WWW-Authenticate` challenge.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use super::problem::Problem;
use crate::ids::UserId;

/// RFC 7518 §3.2: an HS256 key is at least as long as the hash, 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;
/// How far in the future `nbf` may be and still pass: clocks of issuers drift a little.
pub const NBF_LEEWAY_SECS: u64 = 30;

/// Why a secret cannot be used; `None` when it is strong enough.
pub fn weak_secret(secret: &str) -> Option<String> {
    (secret.len() < MIN_SECRET_BYTES).then(|| {
        format!(
            "is {} bytes long; HS256 needs at least {MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`)",
            secret.len()
        )
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// Signs with the current secret; verifies with it and, during a key rotation, the previous one.
/// Cheap to clone (the extractors take it from the state with `FromRef` on every request).
#[derive(Clone)]
pub struct JwtKeys(Arc<Keys>);

#[derive(Clone)]
struct Keys {
    encoding: EncodingKey,
    current: DecodingKey,
    previous: Option<DecodingKey>,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self(Arc::new(Keys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            current: DecodingKey::from_secret(secret.as_bytes()),
            previous: None,
            validation,
        }))
    }

    /// Also accept tokens signed with `secret` (the one being rotated out). Never signs with it.
    pub fn accept_previous(&mut self, secret: &str) {
        Arc::make_mut(&mut self.0).previous = Some(DecodingKey::from_secret(secret.as_bytes()));
    }

    /// A token for `user`, valid for `ttl`.
    pub fn mint(&self, user: UserId, admin: bool, ttl: Duration) -> String {
        let exp = jsonwebtoken::get_current_timestamp() + ttl.as_secs();
        let claims = Claims {
            sub: user.to_string(),
            exp,
            nbf: None,
            role: admin.then(|| "admin".to_owned()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.0.encoding)
            .expect("HS256 signing")
    }

    fn verify(&self, token: &str) -> Result<Caller, Refusal> {
        refuse_critical_headers(token)?;
        let keys = &self.0;
        let mut decoded = jsonwebtoken::decode::<Claims>(token, &keys.current, &keys.validation);
        if let (Err(error), Some(previous)) = (&decoded, &keys.previous) {
            if matches!(error.kind(), ErrorKind::InvalidSignature) {
                decoded = jsonwebtoken::decode::<Claims>(token, previous, &keys.validation);
            }
        }
        let claims = decoded
            .map_err(|e| Refusal::invalid_token(describe(&e)))?
            .claims;
        if claims
            .nbf
            .is_some_and(|nbf| nbf > jsonwebtoken::get_current_timestamp() + NBF_LEEWAY_SECS)
        {
            return Err(Refusal::invalid_token("the token is not valid yet (nbf)"));
        }
        // `7`, never `+7`, `07`, ` 7` or `7.0` (see `UserId::from_str`).
        let user = claims.sub.parse::<UserId>().map_err(|_| {
            Refusal::invalid_token(
                "sub must be a user id: a positive decimal without sign or leading zero",
            )
        })?;
        Ok(Caller {
            user,
            admin: claims.role.as_deref() == Some("admin"),
        })
    }
}

/// RFC 7515 §4.1.11: a recipient must reject a token whose `crit` names an extension it does not
/// understand, and this server understands none.
fn refuse_critical_headers(token: &str) -> Result<(), Refusal> {
    let header = token.split('.').next().unwrap_or_default();
    let Ok(json) = URL_SAFE_NO_PAD.decode(header) else {
        return Ok(()); // jsonwebtoken reports the malformed header
    };
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json) {
        Ok(fields) if fields.contains_key("crit") => Err(Refusal::invalid_token(
            "the token header lists critical extensions (crit) this server does not support",
        )),
        _ => Ok(()),
    }
}

/// A fixed, quotable description (it goes into a header) of why a token was refused.
fn describe(error: &jsonwebtoken::errors::Error) -> &'static str {
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::InvalidSignature => "the token signature does not verify",
        ErrorKind::InvalidAlgorithm => "the token must be signed with HS256",
        ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (sub, exp)",
        ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => {
            "the token is for another audience"
        }
        _ => "the token is malformed",
    }
}

struct Caller {
    user: UserId,
    admin: bool,
}

fn caller(parts: &Parts, keys: &JwtKeys) -> Result<Caller, Refusal> {
    let mut headers = parts.headers.get_all(AUTHORIZATION).iter();
    let Some(header) = headers.next() else {
        return Err(Refusal::absent("missing Authorization: Bearer token"));
    };
    if headers.next().is_some() {
        return Err(Refusal::invalid_request(
            "more than one Authorization header",
        ));
    }
    let value = header
        .to_str()
        .map_err(|_| Refusal::invalid_request("the Authorization header is not ASCII"))?;
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // RFC 6750 §3.1: another scheme is no attempt at a bearer token, so no error code.
        return Err(Refusal::absent("Authorization must be `Bearer <token>`"));
    }
    let token = credentials.trim_start_matches(' ');
    if !is_token68(token) {
        return Err(Refusal::invalid_request(
            "Authorization must be `Bearer <token>` with one token",
        ));
    }
    keys.verify(token)
}

/// RFC 6750 §2.1 `b64token`.
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// A refused request: the problem document plus the RFC 6750 challenge.
#[derive(Debug)]
pub struct Refusal {
    problem: Problem,
    /// `None` when the request carried no bearer credentials at all (RFC 6750 §3.1).
    error: Option<&'static str>,
    description: &'static str,
}

impl Refusal {
    fn absent(description: &'static str) -> Self {
        Self {
            problem: Problem::unauthorized(description),
            error: None,
            description,
        }
    }

    fn invalid_request(description: &'static str) -> Self {
        Self {
            problem: Problem::unauthorized(description),
            error: Some("invalid_request"),
            description,
        }
    }

    fn invalid_token(description: &'static str) -> Self {
        Self {
            problem: Problem::unauthorized(format!("invalid token: {description}")),
            error: Some("invalid_token"),
            description,
        }
    }

    fn insufficient_scope(description: &'static str) -> Self {
        Self {
            problem: Problem::forbidden(description),
            error: Some("insufficient_scope"),
            description,
        }
    }

    fn challenge(&self) -> String {
        match self.error {
            None => r#"Bearer realm="commerce""#.to_owned(),
            Some(error) => format!(
                r#"Bearer realm="commerce", error="{error}", error_description="{}""#,
                self.description
            ),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let challenge = HeaderValue::from_str(&self.challenge()).expect("descriptions are ASCII");
        let mut response = self.problem.into_response();
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        response
    }
}

/// The authenticated user.
pub struct AuthUser(pub UserId);

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    JwtKeys: FromRef<S>,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        caller(parts, &JwtKeys::from_ref(state)).map(|c| AuthUser(c.user))
    }
}

/// An authenticated user with `role: "admin"`.
pub struct Admin(pub UserId);

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    JwtKeys: FromRef<S>,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        let caller = caller(parts, &JwtKeys::from_ref(state))?;
        if caller.admin {
            Ok(Admin(caller.user))
        } else {
            Err(Refusal::insufficient_scope(
                "this endpoint needs an admin token",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_weak() {
        assert!(weak_secret("abc").is_some());
        assert!(weak_secret(&"x".repeat(31)).is_some());
        assert!(weak_secret(&"x".repeat(32)).is_none());
    }

    #[test]
    fn token68_allows_jwt_characters_only() {
        assert!(is_token68("eyJ.abc-_.x"));
        assert!(is_token68("abc=="));
        for bad in ["", "=", "a b", "a,b", "a\"b"] {
            assert!(!is_token68(bad), "{bad:?}");
        }
    }
}
