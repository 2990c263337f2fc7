//! The transactional outbox: what the relay needs from a database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreError;

/// An event as stored: its id is the idempotency key downstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    pub topic: String,
    pub payload: String,
    /// The W3C `traceparent` of the request that wrote it, when traces are on.
    pub traceparent: Option<String>,
}

/// An event to write: its payload, when it happened and the writer's `traceparent`.
pub type NewEvent = (String, DateTime<Utc>, Option<String>);

#[async_trait]
pub trait OutboxStore {
    /// One event per entry, in order, in the caller's transaction: the one way into the
    /// outbox; the relay delivers them after commit.
    async fn insert_events(&mut self, topic: &str, events: &[NewEvent]) -> Result<(), StoreError>;

    /// Events written but not yet delivered.
    async fn outbox_backlog(&mut self) -> Result<i64, StoreError>;

    /// The oldest undelivered events. On PostgreSQL they are locked for the caller's
    /// transaction, skipping rows another instance's relay holds.
    async fn pending_events(&mut self, limit: i64) -> Result<Vec<Event>, StoreError>;

    async fn mark_delivered(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Deletes events delivered before `cutoff` and fanned out to webhooks (or not, while no
    /// webhook exists); returns how many.
    async fn prune_outbox(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
}
