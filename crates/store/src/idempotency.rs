//! Idempotency keys with the HTTP answer they stand for.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreError;
use commerce_domain::ids::UserId;

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
