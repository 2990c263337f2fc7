use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::db;
use crate::PgConn;
use commerce_domain::ids::UserId;
use commerce_store::idempotency::{IdempotencyStore, KeyAnswer, KeyClaim, StoredKey};
use commerce_store::StoreError;

#[derive(sqlx::FromRow)]
struct Key {
    fingerprint: String,
    status: i32,
    body: String,
}

#[async_trait]
impl IdempotencyStore for PgConn {
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
        .execute(&mut self.0)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        let stored: Key = sqlx::query_as(
            "SELECT fingerprint, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        )
        .bind(user.get())
        .bind(key)
        .fetch_one(&mut self.0)
        .await.map_err(db)?;
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
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// One round trip for all: what is free is claimed, and a key already there is locked and
    /// read as last committed (a conflicting insert waits for a claim still in flight, then
    /// sees its answer; a plain read in the same statement would not).
    async fn claim_keys(
        &mut self,
        claims: &[KeyClaim<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<StoredKey>>, StoreError> {
        let users: Vec<i64> = claims.iter().map(|c| c.user.get()).collect();
        let keys: Vec<&str> = claims.iter().map(|c| c.key).collect();
        let fingerprints: Vec<&str> = claims.iter().map(|c| c.fingerprint).collect();
        let rows: Vec<(i64, String, String, i32, String)> = sqlx::query_as(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
             SELECT u, k, f, $4 FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS c(u, k, f)
             ORDER BY u, k
             ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = idempotency_keys.fingerprint
             RETURNING user_id, key, fingerprint, status, body",
        )
        .bind(&users)
        .bind(&keys)
        .bind(&fingerprints)
        .bind(now)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        // A key claimed now has no answer yet (status 0); one an earlier attempt committed has.
        let mut found = std::collections::HashMap::new();
        for (user, key, fingerprint, status, body) in rows {
            if status == 0 {
                continue;
            }
            let status = u16::try_from(status).map_err(StoreError::corrupt)?;
            found.insert(
                (user, key),
                StoredKey {
                    fingerprint,
                    status,
                    body,
                },
            );
        }
        Ok(claims
            .iter()
            .map(|c| found.remove(&(c.user.get(), c.key.to_owned())))
            .collect())
    }

    async fn record_answers(&mut self, answers: &[KeyAnswer<'_>]) -> Result<(), StoreError> {
        let users: Vec<i64> = answers.iter().map(|a| a.user.get()).collect();
        let keys: Vec<&str> = answers.iter().map(|a| a.key).collect();
        let statuses: Vec<i32> = answers.iter().map(|a| i32::from(a.status)).collect();
        let bodies: Vec<&str> = answers.iter().map(|a| a.body).collect();
        sqlx::query(
            "UPDATE idempotency_keys i SET status = a.s, body = a.b
             FROM UNNEST($1::bigint[], $2::text[], $3::int[], $4::text[]) AS a(u, k, s, b)
             WHERE i.user_id = a.u AND i.key = a.k",
        )
        .bind(users)
        .bind(keys)
        .bind(statuses)
        .bind(bodies)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn prune_keys(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(cutoff)
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        Ok(result.rows_affected())
    }
}
