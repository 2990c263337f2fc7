//! Transactional outbox. Events are written in the transaction that causes them and delivered
//! after commit by the relay, at least once, in id order; the consumer makes redelivery harmless.
//! An event committed just before the process dies waits in the table and goes out on restart.

mod relay;
mod store;
mod transport;

pub use relay::{deliver_pending, relay};
pub use transport::Transport;

use crate::db::{Db, DbError};

/// Delivered events are kept this long, then pruned.
const KEEP_DELIVERED: chrono::Duration = chrono::Duration::days(7);

/// Wakes the relay when a transaction that wrote events has committed, so delivery does not
/// wait for the next poll.
#[derive(Default)]
pub struct Signal(tokio::sync::Notify);

impl Signal {
    pub fn notify(&self) {
        self.0.notify_one();
    }

    async fn notified(&self) {
        self.0.notified().await
    }
}

/// An event as stored: its id is the idempotency key downstream.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub topic: String,
    pub payload: String,
}

/// Records an event in the caller's transaction; the relay delivers it after commit.
pub async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    topic: &str,
    payload: &impl serde::Serialize,
    now_micros: i64,
) -> Result<i64, DbError> {
    let payload = serde_json::to_string(payload)
        .map_err(|e| DbError::Corrupt(format!("event payload: {e}")))?;
    store::insert(conn, topic, &payload, now_micros).await
}

/// Events written but not yet delivered.
pub async fn backlog(db: &Db) -> Result<i64, DbError> {
    store::backlog(db).await
}

/// Deletes delivered events past the retention period; returns how many.
pub async fn prune(conn: &mut sqlx::AnyConnection, now_micros: i64) -> Result<u64, DbError> {
    let cutoff = now_micros - KEEP_DELIVERED.num_microseconds().expect("fits");
    store::prune(conn, cutoff).await
}
