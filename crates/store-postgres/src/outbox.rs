use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::db;
use crate::PgConn;
use commerce_store::outbox::{Event, NewEvent, OutboxStore};
use commerce_store::StoreError;

#[derive(sqlx::FromRow)]
struct Pending {
    id: i64,
    topic: String,
    payload: String,
    traceparent: Option<String>,
}

#[async_trait]
impl OutboxStore for PgConn {
    async fn insert_events(&mut self, topic: &str, events: &[NewEvent]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox (topic, payload, created_at, traceparent)
             SELECT $1, p, at, tp
             FROM UNNEST($2::text[], $3::timestamptz[], $4::text[]) WITH ORDINALITY AS e(p, at, tp, n)
             ORDER BY n",
        )
        .bind(topic)
        .bind(events.iter().map(|(p, _, _)| p.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|&(_, at, _)| at).collect::<Vec<_>>())
        .bind(events.iter().map(|(_, _, tp)| tp.as_deref()).collect::<Vec<_>>())
        .execute(&mut self.0)
        .await.map_err(db)?;
        Ok(())
    }

    async fn outbox_backlog(&mut self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
                .fetch_one(&mut self.0)
                .await
                .map_err(db)?,
        )
    }

    /// The rows stay locked until the caller's transaction ends; another instance's relay
    /// skips them instead of sending the same events.
    async fn pending_events(&mut self, limit: i64) -> Result<Vec<Event>, StoreError> {
        let pending: Vec<Pending> = sqlx::query_as(
            "SELECT id, topic, payload, traceparent FROM outbox WHERE delivered_at IS NULL
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
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
        sqlx::query("UPDATE outbox SET delivered_at = $1 WHERE id = ANY($2)")
            .bind(now)
            .bind(ids)
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn prune_outbox(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1
             AND (fanned_out_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM webhooks))",
        )
        .bind(cutoff)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(result.rows_affected())
    }
}
