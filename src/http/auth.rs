//! Bearer JWT authentication (HS256): `sub` is the user id, `exp` is required, `role: "admin"`
//! grants the admin API.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use super::problem::Problem;
use crate::app::AppState;
use crate::ids::UserId;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// Signs and verifies tokens with the shared secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// A token for `user`, valid for `ttl`.
    pub fn mint(&self, user: UserId, admin: bool, ttl: Duration) -> String {
        let exp = jsonwebtoken::get_current_timestamp() + ttl.as_secs();
        let claims = Claims {
            sub: user.to_string(),
            exp,
            role: admin.then(|| "admin".to_owned()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing")
    }

    fn verify(&self, token: &str) -> Result<Caller, Problem> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| Problem::unauthorized(format!("invalid token: {e}")))?;
        let user = data.claims.sub.parse::<UserId>().map_err(|_| {
            Problem::unauthorized("invalid token: sub must be a positive integer user id")
        })?;
        Ok(Caller {
            user,
            admin: data.claims.role.as_deref() == Some("admin"),
        })
    }
}

struct Caller {
    user: UserId,
    admin: bool,
}

fn caller(parts: &Parts, keys: &JwtKeys) -> Result<Caller, Problem> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| Problem::unauthorized("missing Authorization: Bearer token"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| Problem::unauthorized("Authorization must be `Bearer <token>`"))?;
    keys.verify(token.trim())
}

/// The authenticated user.
pub struct AuthUser(pub UserId);

impl FromRequestParts<Arc<AppState>> for AuthUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Problem> {
        caller(parts, &state.jwt).map(|c| AuthUser(c.user))
    }
}

/// An authenticated user with `role: "admin"`.
pub struct Admin(pub UserId);

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Problem> {
        let caller = caller(parts, &state.jwt)?;
        if caller.admin {
            Ok(Admin(caller.user))
        } else {
            Err(Problem::forbidden("this endpoint needs an admin token"))
        }
    }
}
