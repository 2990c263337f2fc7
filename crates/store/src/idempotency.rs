//! Idempotency keys with the HTTP answer they stand for, kept by the committer.
//!
//! The key, a fingerprint of the request and the answer (status and body) are stored in the
//! same transaction as the effect, so a crash never leaves an effect without its key or a key
//! without its effect, and a replay returns the first answer byte for byte. A business refusal
//! is remembered too (its effect written nothing, or was undone in its savepoint); a storage
//! failure (5xx) rolls everything back and is not remembered. This is done once, here, for
//! every keyed kind of write (see [`crate::Shared::attempt`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::{Conn, Fault, Shared, StoreError};
use commerce_domain::ids::UserId;

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

/// What a write that honours keys answers with.
#[derive(Debug)]
pub enum Outcome<T, E> {
    /// The effect ran now (or was refused now).
    Fresh(Result<T, E>),
    /// An earlier attempt with the same key and request answered this.
    Replayed(Answer),
}

impl<T, E: From<StoreError>> Outcome<T, E> {
    /// The result of a write that carried no key, so cannot be a replay.
    pub fn unkeyed(self) -> Result<T, E> {
        match self {
            Outcome::Fresh(result) => result,
            Outcome::Replayed(_) => {
                Err(StoreError::new(Fault::Bug, "a write without a key was replayed").into())
            }
        }
    }
}

/// What an earlier, committed attempt with the same key stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

/// One request's claim of its key.
#[derive(Debug, Clone, Copy)]
pub struct KeyClaim<'a> {
    pub user: UserId,
    pub key: &'a str,
    pub fingerprint: &'a str,
}

/// The answer to store for a claimed key.
#[derive(Debug, Clone, Copy)]
pub struct KeyAnswer<'a> {
    pub user: UserId,
    pub key: &'a str,
    pub status: u16,
    pub body: &'a str,
}

#[async_trait]
pub trait IdempotencyStore: Send {
    /// Claims the key for this transaction, or returns what an earlier attempt stored. A
    /// concurrent claim of the same key waits until the first transaction ends.
    async fn claim_key(
        &mut self,
        user: UserId,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredKey>, StoreError>;

    /// Stores the answer of a claimed key.
    async fn record_answer(
        &mut self,
        user: UserId,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError>;

    /// Claims each key as [`IdempotencyStore::claim_key`] does, in order. The keys must be
    /// distinct.
    async fn claim_keys(
        &mut self,
        claims: &[KeyClaim<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<StoredKey>>, StoreError> {
        let mut stored = Vec::with_capacity(claims.len());
        for claim in claims {
            stored.push(
                self.claim_key(claim.user, claim.key, claim.fingerprint, now)
                    .await?,
            );
        }
        Ok(stored)
    }

    /// Stores the answers of claimed keys.
    async fn record_answers(&mut self, answers: &[KeyAnswer<'_>]) -> Result<(), StoreError> {
        for answer in answers {
            self.record_answer(answer.user, answer.key, answer.status, answer.body)
                .await?;
        }
        Ok(())
    }

    /// Deletes keys created before `cutoff`; returns how many.
    async fn prune_keys(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Runs `writes` of one keyed kind, in order, each at most once per key: claims the keys of a
/// round at once, answers replays and reused keys without running them, runs the rest
/// together and stores the answers their kind remembers.
pub(crate) async fn run_keyed<W: Shared>(
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
fn distinct_keys<W: Shared>(writes: &[&W]) -> usize {
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

/// Writes whose keys are distinct: claim the keys, run the writes that claimed theirs (or have
/// none), record the answers of the claimed keys.
async fn keyed_round<W: Shared>(
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
    let ran = if live.is_empty() {
        Vec::new()
    } else {
        W::run_all(conn, &live).await?
    };
    if ran.len() != live.len() {
        return Err(StoreError::new(Fault::Bug, "a shared run lost a write"));
    }
    let mut ran = ran.into_iter();
    let mut kept: Vec<(&Attempt, Answer)> = Vec::new();
    let outcomes: Vec<_> = writes
        .iter()
        .zip(early)
        .map(|(write, early)| {
            early.unwrap_or_else(|| {
                let result = ran.next().expect("one result per live write");
                // Each claimed key keeps its answer; a server error is not remembered.
                if let Some(attempt) = write.attempt() {
                    kept.extend(W::remember(&result).map(|answer| (attempt, answer)));
                }
                Outcome::Fresh(result)
            })
        })
        .collect();
    let answers: Vec<KeyAnswer> = kept
        .iter()
        .map(|(attempt, answer)| KeyAnswer {
            user: attempt.user,
            key: attempt.key.as_str(),
            status: answer.status,
            body: &answer.body,
        })
        .collect();
    if !answers.is_empty() {
        conn.record_answers(&answers).await?;
    }
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
            // The one comparison of fingerprints: same key, other request.
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
