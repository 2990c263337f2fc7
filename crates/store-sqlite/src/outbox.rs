use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::product::json_ids;
use crate::{json_rows, micros, SqliteConn};
use commerce_store::outbox::{Event, NewEvent, OutboxStore};
use commerce_store::StoreError;

#[async_trait]
impl OutboxStore for SqliteConn {
    async fn insert_events(&mut self, topic: &str, events: &[NewEvent]) -> Result<(), StoreError> {
        self.run(
            "INSERT INTO outbox (topic, payload, created_at, traceparent)
             SELECT ?1, e.value ->> 0, e.value ->> 1, e.value ->> 2
             FROM json_each(?2) AS e ORDER BY e.key",
            params![
                topic,
                json_rows(events.iter().map(|(p, at, tp)| (p, micros(*at), tp)))
            ],
        )?;
        Ok(())
    }

    async fn outbox_backlog(&mut self) -> Result<i64, StoreError> {
        self.one(
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL",
            [],
            |r| r.get(0),
        )
    }

    /// No row locks in SQLite: its single writer is what keeps two relays apart.
    async fn pending_events(&mut self, limit: i64) -> Result<Vec<Event>, StoreError> {
        self.all(
            "SELECT id, topic, payload, traceparent FROM outbox WHERE delivered_at IS NULL
             ORDER BY id LIMIT ?1",
            [limit],
            |r| {
                Ok(Event {
                    id: r.get(0)?,
                    topic: r.get(1)?,
                    payload: r.get(2)?,
                    traceparent: r.get(3)?,
                })
            },
        )
    }

    async fn mark_delivered(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.run(
            "UPDATE outbox SET delivered_at = ?1 WHERE id IN (SELECT value FROM json_each(?2))",
            params![micros(now), json_ids(ids.iter().copied())],
        )?;
        Ok(())
    }

    async fn prune_outbox(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = self.run(
            "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?1
             AND (fanned_out_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM webhooks))",
            [micros(cutoff)],
        )?;
        Ok(deleted as u64)
    }
}
