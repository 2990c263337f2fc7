use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::store::{self, BATCH};
use super::Transport;
use crate::app::AppState;
use crate::clock::to_micros;
use crate::db::{Backend, DbError};

/// How often the relay looks for events when no commit woke it (another instance's events,
/// or a wake-up it missed).
const POLL: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("delivery failed: {0}")]
    Delivery(String),
}

/// Delivers events until `shutdown`: woken by commits, polling as a backstop, backing off
/// while the transport is down (events wait in the table meanwhile).
pub async fn relay(state: Arc<AppState>, transport: Arc<Transport>, shutdown: CancellationToken) {
    let mut backoff = POLL;
    loop {
        let pause = match deliver_pending(&state, &transport).await {
            Ok(delivered) if delivered as i64 == BATCH => continue,
            Ok(_) => {
                backoff = POLL;
                POLL
            }
            Err(error) => {
                metrics::counter!("outbox_delivery_failures_total").increment(1);
                tracing::warn!(%error, retry_in = ?backoff, "outbox delivery failed; events wait in the outbox");
                backoff = (backoff * 2).min(MAX_BACKOFF);
                backoff
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = state.outbox.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// One pass: delivers up to a batch of pending events in id order and marks the delivered
/// ones. Returns how many were delivered.
pub async fn deliver_pending(state: &AppState, transport: &Transport) -> Result<usize, RelayError> {
    match state.db.backend() {
        // The claim (row locks) lasts until the batch is marked, so two instances never send
        // the same batch; only outbox rows are locked, never business rows.
        Backend::Postgres => {
            let mut conn = state.db.writer().await?;
            let mut tx = conn.begin().await.map_err(DbError::from)?;
            let events = store::pending(&mut tx, Backend::Postgres).await?;
            let (delivered, failure) = transport.deliver_all(state, &events).await;
            store::mark_delivered(&mut tx, &delivered, to_micros(state.clock.now())).await?;
            tx.commit().await.map_err(DbError::from)?;
            finish(delivered.len(), failure)
        }
        // SQLite has one writer: read, deliver, then mark in a short write.
        Backend::Sqlite => {
            let events = {
                let mut conn = state.db.reader().acquire().await.map_err(DbError::from)?;
                store::pending(&mut conn, Backend::Sqlite).await?
            };
            let (delivered, failure) = transport.deliver_all(state, &events).await;
            let now = to_micros(state.clock.now());
            let ids = Arc::new(delivered);
            let marked = ids.clone();
            state
                .db
                .write(move |conn| {
                    let ids = marked.clone();
                    Box::pin(async move { store::mark_delivered(conn, &ids, now).await })
                })
                .await?;
            finish(ids.len(), failure)
        }
    }
}

fn finish(delivered: usize, failure: Option<String>) -> Result<usize, RelayError> {
    metrics::counter!("outbox_delivered_total").increment(delivered as u64);
    match failure {
        Some(error) => Err(RelayError::Delivery(error)),
        None => Ok(delivered),
    }
}
