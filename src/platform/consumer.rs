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

/// Applies one event, once: the event id is recorded in the same transaction as its effect,
/// so a redelivered event changes nothing.
pub async fn consume(
    state: &AppState,
    event_id: i64,
    topic: &str,
    payload: &str,
) -> Result<(), PlatformError> {
    if topic != ORDER_PAID {
        tracing::warn!(event_id, topic, "ignoring an event of an unknown topic");
        return Ok(());
    }
    let event: OrderPaid = match serde_json::from_str(payload) {
        Ok(event) => event,
        // Retrying cannot fix it, and holding it back would block every later event.
        Err(error) => {
            metrics::counter!("platform_events_rejected_total").increment(1);
            tracing::error!(event_id, %error, "dropping an unreadable event");
            return Ok(());
        }
    };
    let day = shop_day(event.paid_at, state.settings.time_zone).to_string();
    let now = to_micros(state.clock.now());
    let event = Arc::new(event);
    let applied = state
        .db
        .write(move |conn| {
            let (event, day) = (event.clone(), day.clone());
            Box::pin(async move {
                if !store::mark_processed(conn, event_id, now).await? {
                    return Ok::<_, PlatformError>(false);
                }
                store::add_live_sales(conn, &day, &event.items).await?;
                Ok(true)
            })
        })
        .await?;
    if applied {
        metrics::counter!("platform_events_applied_total").increment(1);
    } else {
        metrics::counter!("platform_events_duplicate_total").increment(1);
    }
    Ok(())
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
                consume(&state, id, &topic, &payload)
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
