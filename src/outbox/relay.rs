use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::consume::Consume;
use super::transport::Transport;
use crate::clock::Clock;
use crate::store::{Db, StoreError};

/// Events handed to the transport at a time.
const BATCH: i64 = 200;

/// How often the relay looks for events when no commit woke it (another instance's events,
/// or a wake-up it missed).
const POLL: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Wakes the outbox's consumers (the relay and the webhook fan-out) when a transaction that
/// wrote events has committed, so they do not wait for the next poll. Clones wake the same
/// consumers.
#[derive(Clone, Default)]
pub struct Signal(Arc<[tokio::sync::Notify; 2]>);

impl Signal {
    pub fn notify(&self) {
        self.0.iter().for_each(tokio::sync::Notify::notify_one);
    }

    async fn notified(&self) {
        self.0[0].notified().await
    }

    /// Resolves at the next commit that wrote events, for the webhook fan-out.
    pub async fn fan_out_notified(&self) {
        self.0[1].notified().await
    }
}

/// What the relay works with: the outbox's database, the clock, its wake-up, and the consumer
/// that takes the events when they stay in this process.
#[derive(Clone)]
pub struct Relay {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub signal: Signal,
    pub consumer: Arc<dyn Consume>,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Db(#[from] StoreError),
    #[error("delivery failed: {0}")]
    Delivery(String),
}

/// Delivers events until `shutdown`: woken by commits and by the transport reconnecting,
/// polling as a backstop, backing off while the transport is down (events wait in the table
/// meanwhile).
pub async fn relay(relay: Relay, transport: Arc<Transport>, shutdown: CancellationToken) {
    // Shown as 0 until a delivery fails, so the rate can be graphed from the start.
    metrics::counter!("outbox_delivery_failures_total").increment(0);
    let mut backoff = POLL;
    loop {
        let pause = match deliver_pending(&relay, &transport).await {
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
            _ = relay.signal.notified() => {}
            // Events waiting for NATS go as soon as it is back, not after the backoff.
            _ = transport.reconnected() => backoff = POLL,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// One pass: delivers up to a batch of pending events in id order and marks the delivered
/// ones. Returns how many were delivered.
pub async fn deliver_pending(relay: &Relay, transport: &Transport) -> Result<usize, RelayError> {
    let now = relay.clock.now();
    let consumer = relay.consumer.as_ref();
    let (delivered, failure) = relay
        .db
        .deliver_outbox(BATCH, now, |events| async move {
            transport.deliver_all(consumer, &events).await
        })
        .await?;
    finish(delivered, failure)
}

fn finish(delivered: usize, failure: Option<String>) -> Result<usize, RelayError> {
    metrics::counter!("outbox_delivered_total").increment(delivered as u64);
    match failure {
        Some(error) => Err(RelayError::Delivery(error)),
        None => Ok(delivered),
    }
}
