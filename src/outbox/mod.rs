//! Transactional outbox. Events are written in the transaction that causes them and delivered
//! after commit by the relay, at least once, in id order; the consumer makes redelivery harmless.
//! An event committed just before the process dies waits in the table and goes out on restart.

mod consume;
mod relay;
mod transport;

pub use consume::{Consume, Delivered};
pub use relay::{deliver_pending, relay, Relay, Signal};
pub use transport::Transport;

use chrono::{DateTime, Utc};

pub use crate::store::outbox::Event;
use crate::store::{Conn, Db, StoreError};

/// Delivered events are kept this long, then pruned.
const KEEP_DELIVERED: chrono::Duration = chrono::Duration::days(7);

/// Events written but not yet delivered.
pub async fn backlog(db: &Db) -> Result<i64, StoreError> {
    db.read().await?.outbox_backlog().await
}

/// Deletes delivered events past the retention period; returns how many.
pub async fn prune(conn: &mut dyn Conn, now: DateTime<Utc>) -> Result<u64, StoreError> {
    conn.prune_outbox(now - KEEP_DELIVERED).await
}
