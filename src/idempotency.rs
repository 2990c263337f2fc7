//! `Idempotency-Key` support for the write endpoints that take it. The committer claims keys
//! and stores answers, once for every kind of write (see `commerce_store::idempotency`); here
//! is what the application adds: how long keys are kept.

use chrono::{DateTime, Utc};

use crate::store::{Conn, StoreError};

pub use crate::store::idempotency::{
    Answer, Attempt, IdempotencyError, IdempotencyKey, Outcome, MAX_KEY_LEN,
};

/// How long keys are kept; the contract promises at least 24 hours.
pub const RETENTION: chrono::Duration = chrono::Duration::hours(48);

/// Deletes keys past the retention period; returns how many.
pub async fn prune(conn: &mut dyn Conn, now: DateTime<Utc>) -> Result<u64, StoreError> {
    conn.prune_keys(now - RETENTION).await
}
