//! `Idempotency-Key` support for `POST /me/balance/charges` and `POST /orders`.
//!
//! The key, a fingerprint of the request and the outcome are stored in the same transaction as
//! the effect, so a crash can never leave an effect without its key or a key without its effect.
//! A business rejection (a 4xx) is remembered too: the effect runs inside a savepoint that is
//! rolled back, and the key row with the rejection is committed. Infrastructure failures (5xx)
//! roll the whole transaction back, so they are not remembered.
//!
//! A concurrent retry with the same key blocks on the key's unique index (PostgreSQL) or on the
//! single writer (SQLite) until the first commits, then replays its outcome.

mod store;

use crate::db::DbError;
use crate::ids::UserId;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection};
use thiserror::Error;

/// How long keys are kept; the contract promises at least 24 hours.
pub const RETENTION: chrono::Duration = chrono::Duration::hours(48);

/// A validated `Idempotency-Key` header value: 1..=255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let printable = |b: &u8| (0x20..=0x7e).contains(b);
        (!raw.is_empty() && raw.len() <= 255 && raw.iter().all(printable))
            .then(|| Self(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IdempotencyError {
    #[error("this Idempotency-Key was already used with a different request")]
    KeyReused,
}

/// One user's key for one request: what identifies a retry.
#[derive(Debug, Clone)]
pub struct Attempt {
    user: UserId,
    key: IdempotencyKey,
    fingerprint: String,
}

impl Attempt {
    /// `operation` names the endpoint, so one key reused across endpoints is a different request.
    pub fn new(
        user: UserId,
        key: IdempotencyKey,
        operation: &str,
        request: &impl Serialize,
    ) -> Self {
        let mut hash = Sha256::new();
        hash.update(operation.as_bytes());
        hash.update([0]);
        hash.update(serde_json::to_vec(request).expect("requests serialize"));
        let fingerprint = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Self {
            user,
            key,
            fingerprint,
        }
    }
}

/// Errors that are business rejections: remembered and replayed, unlike infrastructure failures.
pub trait Rejection {
    fn is_rejection(&self) -> bool;
}

/// Runs `effect` in the caller's transaction at most once per attempt key: a retry gets the
/// stored outcome back. Without a key it simply runs the effect.
///
/// The outer `Err` means "roll the transaction back"; `Ok(outcome)` means "commit, then answer
/// with `outcome`" — which may be a remembered rejection, whose effect the savepoint undid.
pub async fn once<T, E, F>(
    conn: &mut AnyConnection,
    attempt: Option<&Attempt>,
    now_micros: i64,
    effect: F,
) -> Result<Result<T, E>, E>
where
    T: Serialize + DeserializeOwned,
    E: Serialize + DeserializeOwned + Rejection + From<DbError> + From<IdempotencyError>,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>>,
{
    let Some(attempt) = attempt else {
        return effect(conn).await.map(Ok);
    };
    if let Some(previous) = store::claim(conn, attempt, now_micros).await? {
        if previous.fingerprint != attempt.fingerprint {
            return Err(IdempotencyError::KeyReused.into());
        }
        metrics::counter!("idempotent_replays_total").increment(1);
        let outcome = serde_json::from_str::<Result<T, E>>(&previous.outcome)
            .map_err(|e| DbError::Corrupt(format!("stored idempotent outcome: {e}")))?;
        return Ok(outcome);
    }

    let mut savepoint = conn.begin().await.map_err(DbError::from)?;
    let outcome = effect(&mut savepoint).await;
    match &outcome {
        Ok(_) => savepoint.commit().await.map_err(DbError::from)?,
        Err(e) if e.is_rejection() => savepoint.rollback().await.map_err(DbError::from)?,
        Err(_) => return outcome.map(Ok),
    }
    let stored = serde_json::to_string(&outcome)
        .map_err(|e| DbError::Corrupt(format!("idempotent outcome does not serialize: {e}")))?;
    store::record(conn, attempt, &stored).await?;
    Ok(outcome)
}

/// Deletes keys past the retention period; returns how many.
pub async fn prune(conn: &mut AnyConnection, now_micros: i64) -> Result<u64, DbError> {
    let cutoff = now_micros - RETENTION.num_microseconds().expect("fits");
    store::prune(conn, cutoff).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters() {
        assert!(IdempotencyKey::parse(b"a").is_some());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_some());
        assert!(IdempotencyKey::parse(b"order 42 / retry ~!").is_some());
        assert!(IdempotencyKey::parse(b"").is_none());
        assert!(IdempotencyKey::parse(&[b'k'; 256]).is_none());
        assert!(IdempotencyKey::parse(b"tab\there").is_none());
        assert!(IdempotencyKey::parse("한글".as_bytes()).is_none());
    }

    #[test]
    fn the_fingerprint_depends_on_operation_and_request() {
        let user = UserId::new(1).unwrap();
        let key = IdempotencyKey::parse(b"k").unwrap();
        let a = Attempt::new(user, key.clone(), "charge", &5000);
        assert_eq!(
            a.fingerprint,
            Attempt::new(user, key.clone(), "charge", &5000).fingerprint
        );
        assert_ne!(
            a.fingerprint,
            Attempt::new(user, key.clone(), "charge", &5001).fingerprint
        );
        assert_ne!(
            a.fingerprint,
            Attempt::new(user, key, "order", &5000).fingerprint
        );
    }
}
