use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::product::json_ids;
use super::{json_rows, micros};
use crate::store::outbox::{Event, NewEvent, OutboxStore};
use crate::store::StoreError;

#[derive(sqlx::FromRow)]
struct Pending {
    id: i64,
    topic: String,
    payload: String,
    traceparent: Option<String>,
}

#[async_trait]
impl OutboxStore for SqliteConnection {
    async fn insert_event(
        &mut self,
        topic: &str,
        payload: &str,
        now: DateTime<Utc>,
        traceparent: Option<&str>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO outbox (topic, payload, created_at, traceparent) VALUES ($1, $2, $3, $4)
             RETURNING id",
        )
        .bind(topic)
        .bind(payload)
        .bind(micros(now))
        .bind(traceparent)
        .fetch_one(&mut *self)
        .await?)
    }

    async fn insert_events(&mut self, topic: &str, events: &[NewEvent]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox (topic, payload, created_at, traceparent)
             SELECT $1, e.value ->> 0, e.value ->> 1, e.value ->> 2
             FROM json_each($2) AS e ORDER BY e.key",
        )
        .bind(topic)
        .bind(json_rows(
            events.iter().map(|(p, at, tp)| (p, micros(*at), tp)),
        ))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn outbox_backlog(&mut self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
                .fetch_one(&mut *self)
                .await?,
        )
    }

    /// No row locks in SQLite: its single writer is what keeps two relays apart.
    async fn pending_events(&mut self, limit: i64) -> Result<Vec<Event>, StoreError> {
        let pending: Vec<Pending> = sqlx::query_as(
            "SELECT id, topic, payload, traceparent FROM outbox WHERE delivered_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *self)
        .await?;
        Ok(pending
            .into_iter()
            .map(|p| Event {
                id: p.id,
                topic: p.topic,
                payload: p.payload,
                traceparent: p.traceparent,
            })
            .collect())
    }

    async fn mark_delivered(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET delivered_at = $1 WHERE id IN (SELECT value FROM json_each($2))",
        )
        .bind(micros(now))
        .bind(json_ids(ids.iter().copied()))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn prune_outbox(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let result =
            sqlx::query("DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1")
                .bind(micros(cutoff))
                .execute(&mut *self)
                .await?;
        Ok(result.rows_affected())
    }
}
