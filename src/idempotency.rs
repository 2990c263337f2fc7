//! `Idempotency-Key` support for the write endpoints that take it.
//!
//! The key, a fingerprint of the request and the HTTP answer (status and body) are stored in
//! the same transaction as the effect, so a crash can never leave an effect without its key or
//! a key without its effect, and a replay returns the first answer byte for byte whatever the
//! code has become since. A business rejection (a 4xx) is remembered too: the effect runs inside
//! a savepoint that is rolled back, and the key row with the rejection is committed. Storage
//! failures (5xx) roll the whole transaction back, so they are not remembered.
//!
//! A concurrent retry with the same key blocks on the key's unique index (PostgreSQL) or on the
//! single writer (SQLite) until the first commits, then replays its answer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::ids::UserId;
use crate::store::idempotency::{KeyAnswer, KeyClaim};
use crate::store::{Conn, Fault, StoreError, StoreFault};

/// How long keys are kept; the contract promises at least 24 hours.
pub const RETENTION: chrono::Duration = chrono::Duration::hours(48);

/// The longest `Idempotency-Key` accepted, in bytes (the OpenAPI document states it too).
pub const MAX_KEY_LEN: usize = 255;

/// A validated `Idempotency-Key` header value: 1..=255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let printable = |b: &u8| (0x20..=0x7e).contains(b);
        (!raw.is_empty() && raw.len() <= MAX_KEY_LEN && raw.iter().all(printable))
            .then(|| Self(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
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

    fn claim(&self) -> KeyClaim<'_> {
        KeyClaim {
            user: self.user,
            key: self.key.as_str(),
            fingerprint: &self.fingerprint,
        }
    }

    /// Whether two attempts use the same key of the same user.
    pub fn same_key(&self, other: &Attempt) -> bool {
        self.user == other.user && self.key == other.key
    }
}

/// An HTTP answer as stored with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

/// What a write endpoint that honours keys answers with.
#[derive(Debug)]
pub enum Outcome<T, E> {
    /// The effect ran now (or was refused now).
    Fresh(Result<T, E>),
    /// An earlier attempt with the same key and request answered this.
    Replayed(Answer),
}

impl<T, E> From<Result<Outcome<T, E>, E>> for Outcome<T, E> {
    fn from(result: Result<Outcome<T, E>, E>) -> Self {
        result.unwrap_or_else(|error| Outcome::Fresh(Err(error)))
    }
}

/// How an endpoint answers a result, for storing: `None` for answers that must not be
/// remembered (server errors).
pub type Render<T, E> = fn(&Result<T, E>) -> Option<Answer>;

/// Runs `effect` in the caller's transaction at most once per attempt key: a retry gets the
/// stored answer back. Without a key it simply runs the effect.
///
/// The outer `Err` means "roll the transaction back"; `Ok(outcome)` means "commit, then answer
/// with `outcome`", which may be a remembered rejection whose effect the savepoint undid.
pub async fn once<T, E, F>(
    conn: &mut dyn Conn,
    attempt: Option<&Attempt>,
    now: DateTime<Utc>,
    render: Render<T, E>,
    effect: F,
) -> Result<Outcome<T, E>, E>
where
    E: From<StoreError> + From<IdempotencyError> + StoreFault,
    F: for<'c> FnOnce(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>>,
{
    let Some(attempt) = attempt else {
        return effect(conn).await.map(|value| Outcome::Fresh(Ok(value)));
    };
    let key = attempt.key.as_str();
    if let Some(previous) = conn
        .claim_key(attempt.user, key, &attempt.fingerprint, now)
        .await?
    {
        if previous.fingerprint != attempt.fingerprint {
            return Err(IdempotencyError::KeyReused.into());
        }
        metrics::counter!("idempotent_replays_total").increment(1);
        return Ok(Outcome::Replayed(Answer {
            status: previous.status,
            body: previous.body,
        }));
    }

    conn.savepoint().await?;
    let outcome = effect(&mut *conn).await;
    match &outcome {
        Err(error) if error.store_error().is_some() => {
            return outcome.map(|v| Outcome::Fresh(Ok(v)))
        }
        Err(_) => conn.rollback_to_savepoint().await?,
        Ok(_) => conn.release_savepoint().await?,
    }
    // A refusal to render means a server error, which rolls everything back: it is not kept.
    let Some(answer) = render(&outcome) else {
        return outcome.map(|v| Outcome::Fresh(Ok(v)));
    };
    conn.record_answer(attempt.user, key, answer.status, &answer.body)
        .await?;
    Ok(Outcome::Fresh(outcome))
}

/// A write decided together with the others of its kind (see `store::Shared`) that honours an
/// `Idempotency-Key`: [`decide_keyed`] claims the keys of a batch's writes at once, lets
/// `decide_all` run the writes whose keys were free, and stores their answers at once.
#[async_trait]
pub trait Keyed: Sync + Sized {
    type Value: Send;
    type Error: From<IdempotencyError> + Send;

    fn attempt(&self) -> Option<&Attempt>;
    fn now(&self) -> DateTime<Utc>;
    fn render(&self) -> Render<Self::Value, Self::Error>;

    /// Decides and stores `writes` (none of them a replay): one result each, in order.
    async fn decide_all(
        conn: &mut dyn Conn,
        writes: &[&Self],
    ) -> Result<Vec<Result<Self::Value, Self::Error>>, StoreError>;
}

/// Runs writes decided together, in order, each at most once per attempt key.
pub async fn decide_keyed<W: Keyed>(
    conn: &mut dyn Conn,
    writes: &[&W],
) -> Result<Vec<Outcome<W::Value, W::Error>>, StoreError> {
    let mut outcomes = Vec::with_capacity(writes.len());
    // A retry that arrives with its first attempt in one batch must see that attempt's answer:
    // so a key seen twice starts a new round, which finds it recorded.
    let mut start = 0;
    while start < writes.len() {
        let end = start + distinct_keys(&writes[start..]);
        outcomes.extend(keyed_round(conn, &writes[start..end]).await?);
        start = end;
    }
    Ok(outcomes)
}

/// How many writes from the start have keys not used before them.
fn distinct_keys<W: Keyed>(writes: &[&W]) -> usize {
    let mut seen: Vec<&Attempt> = Vec::new();
    for (n, write) in writes.iter().enumerate() {
        if let Some(attempt) = write.attempt() {
            if seen.iter().any(|s| s.same_key(attempt)) {
                return n;
            }
            seen.push(attempt);
        }
    }
    writes.len()
}

/// Writes whose keys are distinct: claim the keys, decide the writes that claimed theirs (or
/// have none), record the answers of the claimed keys.
async fn keyed_round<W: Keyed>(
    conn: &mut dyn Conn,
    writes: &[&W],
) -> Result<Vec<Outcome<W::Value, W::Error>>, StoreError> {
    let attempts: Vec<Option<&Attempt>> = writes.iter().map(|w| w.attempt()).collect();
    let now = writes
        .iter()
        .map(|w| w.now())
        .max()
        .unwrap_or_else(Utc::now);
    let early = claim_all::<W::Value, W::Error>(conn, &attempts, now).await?;
    let live: Vec<&W> = writes
        .iter()
        .zip(&early)
        .filter(|(_, early)| early.is_none())
        .map(|(write, _)| *write)
        .collect();
    let decided = if live.is_empty() {
        Vec::new()
    } else {
        W::decide_all(conn, &live).await?
    };
    if decided.len() != live.len() {
        return Err(StoreError::new(Fault::Bug, "a keyed run lost a write"));
    }
    let mut decided = decided.into_iter();
    let mut answers: Vec<(&Attempt, Answer)> = Vec::new();
    let outcomes = writes
        .iter()
        .zip(early)
        .map(|(write, early)| {
            early.unwrap_or_else(|| {
                let result = decided.next().expect("one result per live write");
                // Each claimed key keeps its answer; a server error is not remembered.
                if let Some(attempt) = write.attempt() {
                    answers.extend((write.render())(&result).map(|answer| (attempt, answer)));
                }
                Outcome::Fresh(result)
            })
        })
        .collect();
    record_all(conn, &answers).await?;
    Ok(outcomes)
}

/// Claims the keys of `attempts` at once: for each attempt, `None` to go ahead, or what to
/// answer instead (a replay, or a key reused). The attempts' keys must be distinct.
async fn claim_all<T, E>(
    conn: &mut dyn Conn,
    attempts: &[Option<&Attempt>],
    now: DateTime<Utc>,
) -> Result<Vec<Option<Outcome<T, E>>>, StoreError>
where
    E: From<IdempotencyError>,
{
    let claims: Vec<KeyClaim> = attempts.iter().flatten().map(|a| a.claim()).collect();
    let mut stored = if claims.is_empty() {
        Vec::new()
    } else {
        conn.claim_keys(&claims, now).await?
    }
    .into_iter();
    Ok(attempts
        .iter()
        .map(|attempt| {
            let attempt = attempt.as_ref()?;
            let previous = stored.next().flatten()?;
            Some(if previous.fingerprint != attempt.fingerprint {
                Outcome::Fresh(Err(IdempotencyError::KeyReused.into()))
            } else {
                metrics::counter!("idempotent_replays_total").increment(1);
                Outcome::Replayed(Answer {
                    status: previous.status,
                    body: previous.body,
                })
            })
        })
        .collect())
}

/// Stores the answers of the attempts that claimed their key.
async fn record_all(conn: &mut dyn Conn, answers: &[(&Attempt, Answer)]) -> Result<(), StoreError> {
    if answers.is_empty() {
        return Ok(());
    }
    let rows: Vec<KeyAnswer> = answers
        .iter()
        .map(|(attempt, answer)| KeyAnswer {
            user: attempt.user,
            key: attempt.key.as_str(),
            status: answer.status,
            body: &answer.body,
        })
        .collect();
    conn.record_answers(&rows).await
}

/// Deletes keys past the retention period; returns how many.
pub async fn prune(conn: &mut dyn Conn, now: DateTime<Utc>) -> Result<u64, StoreError> {
    conn.prune_keys(now - RETENTION).await
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
