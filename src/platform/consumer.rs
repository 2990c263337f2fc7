use async_nats::jetstream::consumer::{pull, AckPolicy};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::event::{OrderPaid, ORDER_PAID};
use super::{store, PlatformError};
use crate::app::AppState;
use crate::clock::{shop_day, to_micros};
use crate::outbox::Transport;

/// An event as delivered: its id (the idempotency key), topic and payload.
pub struct Delivered<'a> {
    pub id: i64,
    pub topic: &'a str,
    pub payload: &'a str,
}

/// Applies events, each once, in one transaction: an event's id is recorded in the same
/// transaction as the sales it adds, so a redelivered event changes nothing. Events of unknown
/// topics and unreadable ones are counted and skipped: retrying cannot fix them, and holding
/// them back would block every later event.
pub async fn consume(state: &AppState, events: &[Delivered<'_>]) -> Result<(), PlatformError> {
    let tz = state.settings.time_zone;
    let readable: Vec<(i64, String, OrderPaid)> = events
        .iter()
        .filter_map(|event| match readable(event) {
            Ok(paid) => Some((event.id, shop_day(paid.paid_at, tz).to_string(), paid)),
            Err(why) => {
                metrics::counter!("platform_events_rejected_total").increment(1);
                tracing::error!(
                    event_id = event.id,
                    topic = event.topic,
                    why,
                    "dropping an event"
                );
                None
            }
        })
        .collect();
    if readable.is_empty() {
        return Ok(());
    }
    let now = to_micros(state.clock.now());
    let readable = Arc::new(readable);
    let applied = state
        .db
        .write(move |conn| {
            let readable = readable.clone();
            Box::pin(async move {
                let mut applied = 0u64;
                for (id, day, event) in readable.iter() {
                    if store::mark_processed(conn, *id, now).await? {
                        store::add_live_sales(conn, day, &event.items).await?;
                        applied += 1;
                    }
                }
                Ok::<_, PlatformError>((applied, readable.len() as u64 - applied))
            })
        })
        .await?;
    metrics::counter!("platform_events_applied_total").increment(applied.0);
    metrics::counter!("platform_events_duplicate_total").increment(applied.1);
    Ok(())
}

fn readable(event: &Delivered<'_>) -> Result<OrderPaid, String> {
    if event.topic != ORDER_PAID {
        return Err(format!("unknown topic {}", event.topic));
    }
    serde_json::from_str(event.payload).map_err(|e| e.to_string())
}

const DURABLE: &str = "platform";

/// With NATS configured, the platform's side: a durable pull consumer on the stream, each
/// message applied then acknowledged. Reconnects with backoff while NATS is away.
pub async fn consume_jetstream(
    state: Arc<AppState>,
    transport: Arc<Transport>,
    shutdown: CancellationToken,
) {
    let Transport::JetStream(nats) = transport.as_ref() else {
        return;
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        let run = async {
            nats.ensure_stream().await?;
            let stream = nats
                .context()
                .get_stream(nats.stream())
                .await
                .map_err(|e| e.to_string())?;
            let config = pull::Config {
                durable_name: Some(DURABLE.to_owned()),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            };
            let consumer = stream
                .get_or_create_consumer(DURABLE, config)
                .await
                .map_err(|e| e.to_string())?;
            let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
            let prefix = format!("{}.", nats.stream());
            while let Some(message) = messages.next().await {
                let message = message.map_err(|e| e.to_string())?;
                let id = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .and_then(|v| v.as_str().parse::<i64>().ok())
                    .ok_or("a message without a numeric Nats-Msg-Id")?;
                let topic = message
                    .subject
                    .as_str()
                    .strip_prefix(&prefix)
                    .unwrap_or_default()
                    .to_owned();
                let payload = String::from_utf8_lossy(&message.payload).into_owned();
                consume(
                    &state,
                    &[Delivered {
                        id,
                        topic: &topic,
                        payload: &payload,
                    }],
                )
                .await
                .map_err(|e| e.to_string())?;
                message.ack().await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            result = run => {
                if let Err(error) = result {
                    tracing::warn!(%error, retry_in = ?backoff, "the JetStream consumer stopped");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
