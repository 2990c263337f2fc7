//! Idempotency keys with the HTTP answer they stand for.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::ids::UserId;

/// What an earlier, committed attempt with the same key stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

#[async_trait]
pub trait IdempotencyStore {
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

    /// Deletes keys created before `cutoff`; returns how many.
    async fn prune_keys(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
}
