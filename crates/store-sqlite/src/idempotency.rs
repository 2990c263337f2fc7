use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::{micros, SqliteConn};
use commerce_domain::ids::UserId;
use commerce_store::idempotency::{IdempotencyStore, StoredKey};
use commerce_store::StoreError;

#[async_trait]
impl IdempotencyStore for SqliteConn {
    /// The single writer serializes attempts, so a concurrent retry finds the first one's row.
    async fn claim_key(
        &mut self,
        user: UserId,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredKey>, StoreError> {
        let inserted = self.run(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id, key) DO NOTHING",
            params![user.get(), key, fingerprint, micros(now)],
        )?;
        if inserted == 1 {
            return Ok(None);
        }
        let (fingerprint, status, body): (String, i64, String) = self.one(
            "SELECT fingerprint, status, body FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
            params![user.get(), key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(Some(StoredKey {
            fingerprint,
            status: u16::try_from(status).map_err(StoreError::corrupt)?,
            body,
        }))
    }

    async fn record_answer(
        &mut self,
        user: UserId,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        self.run(
            "UPDATE idempotency_keys SET status = ?3, body = ?4 WHERE user_id = ?1 AND key = ?2",
            params![user.get(), key, i64::from(status), body],
        )?;
        Ok(())
    }

    async fn prune_keys(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = self.run(
            "DELETE FROM idempotency_keys WHERE created_at < ?1",
            [micros(cutoff)],
        )?;
        Ok(deleted as u64)
    }
}
