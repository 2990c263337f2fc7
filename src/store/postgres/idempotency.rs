use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::ids::UserId;
use crate::store::idempotency::{IdempotencyStore, StoredKey};
use crate::store::StoreError;

#[derive(sqlx::FromRow)]
struct Key {
    fingerprint: String,
    status: i32,
    body: String,
}

#[async_trait]
impl IdempotencyStore for PgConnection {
    /// A concurrent claim of the same key waits on the unique index until the first
    /// transaction ends, then finds its row.
    async fn claim_key(
        &mut self,
        user: UserId,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredKey>, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, key) DO NOTHING",
        )
        .bind(user.get())
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .execute(&mut *self)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        let stored: Key = sqlx::query_as(
            "SELECT fingerprint, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        )
        .bind(user.get())
        .bind(key)
        .fetch_one(&mut *self)
        .await?;
        Ok(Some(StoredKey {
            fingerprint: stored.fingerprint,
            status: u16::try_from(stored.status).map_err(StoreError::corrupt)?,
            body: stored.body,
        }))
    }

    async fn record_answer(
        &mut self,
        user: UserId,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $3, body = $4 WHERE user_id = $1 AND key = $2",
        )
        .bind(user.get())
        .bind(key)
        .bind(i32::from(status))
        .bind(body)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn prune_keys(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(cutoff)
            .execute(&mut *self)
            .await?;
        Ok(result.rows_affected())
    }
}
