use async_nats::jetstream::consumer::{pull, AckPolicy};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use futures::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use super::daily;
use super::errors::PlatformError;
use super::state::PlatformState;
use crate::clock::shop_day;
use crate::events::jetstream::JetStream;
use crate::events::{OrderCancelled, OrderPaid, SoldItem, ORDER_CANCELLED, ORDER_PAID};
use crate::outbox::{Consume, Delivered};
use crate::store::{Conn, StoreError};
use crate::telemetry;

/// What an event does to one shop day's figures.
enum Change {
    /// A paid order adds its sales to the day it was placed.
    Sold(Vec<SoldItem>),
    /// A cancelled order takes them off that day again.
    TakenBack(Vec<SoldItem>),
}

/// Applies events, each once, in one transaction: an event's id is recorded in the same
/// transaction as the change it makes, so a redelivered event changes nothing. Events of
/// unknown topics and unreadable ones are counted and skipped: retrying cannot fix them, and
/// holding them back would block every later event.
pub async fn consume(state: &PlatformState, events: &[Delivered<'_>]) -> Result<(), PlatformError> {
    let tz = state.time_zone;
    let readable: Vec<(i64, NaiveDate, Change, Span)> = events
        .iter()
        .filter_map(|event| match readable(event, tz) {
            Ok((day, change)) => {
                // Ends when the transaction has committed (or failed).
                let span = tracing::info_span!(
                    "platform.consume",
                    event_id = event.id,
                    topic = event.topic
                );
                telemetry::continue_trace(&span, event.traceparent);
                Some((event.id, day, change, span))
            }
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
    let now = state.clock.now();
    let readable = Arc::new(readable);
    let applied = state
        .db
        .write(move |conn| {
            let readable = readable.clone();
            Box::pin(async move {
                let ids: Vec<i64> = readable.iter().map(|(id, ..)| *id).collect();
                let fresh: HashSet<i64> =
                    conn.mark_processed(&ids, now).await?.into_iter().collect();
                let fresh_events = || readable.iter().filter(|(id, ..)| fresh.contains(id));
                // A batch's sales add up per day and product: one statement a day.
                let mut sold: BTreeMap<NaiveDate, BTreeMap<i64, SoldItem>> = BTreeMap::new();
                for (_, day, change, _) in fresh_events() {
                    if let Change::Sold(items) = change {
                        let day = sold.entry(*day).or_default();
                        for item in items {
                            let total = day.entry(item.product_id).or_insert(SoldItem {
                                product_id: item.product_id,
                                quantity: 0,
                                amount: 0,
                            });
                            total.quantity += item.quantity;
                            total.amount += item.amount;
                        }
                    }
                }
                for (day, items) in sold {
                    let items: Vec<SoldItem> = items.into_values().collect();
                    conn.add_live_sales(day, &items).await?;
                }
                for (_, day, change, span) in fresh_events() {
                    if let Change::TakenBack(items) = change {
                        take_back(conn, *day, items, tz, now)
                            .instrument(span.clone())
                            .await?;
                    }
                }
                let applied = fresh.len() as u64;
                Ok::<_, PlatformError>((applied, readable.len() as u64 - applied))
            })
        })
        .await?;
    metrics::counter!("platform_events_applied_total").increment(applied.0);
    metrics::counter!("platform_events_duplicate_total").increment(applied.1);
    Ok(())
}

/// The outbox relay hands events to the platform in this process through this.
#[async_trait::async_trait]
impl Consume for PlatformState {
    async fn consume(&self, events: &[Delivered<'_>]) -> Result<(), String> {
        consume(self, events).await.map_err(|e| e.to_string())
    }
}

/// How long an applied event's id is remembered. A redelivery after that would count twice, so
/// this outlasts every way an event comes back: JetStream's duplicate window (2 minutes), the
/// stream's message age (a day, all a recreated consumer can replay) and the outbox's 7 days of
/// delivered events (an operator replaying the outbox); a day more as a margin.
const KEEP_PROCESSED: chrono::Duration = chrono::Duration::days(8);

/// Forgets events applied longer ago than `KEEP_PROCESSED`; returns how many.
pub async fn prune_processed(state: &PlatformState) -> Result<u64, PlatformError> {
    let cutoff = state.clock.now() - KEEP_PROCESSED;
    state
        .db
        .write(move |conn| {
            Box::pin(async move { Ok::<_, PlatformError>(conn.prune_processed(cutoff).await?) })
        })
        .await
}

fn readable(event: &Delivered<'_>, tz: Tz) -> Result<(NaiveDate, Change), String> {
    let unreadable = |e: serde_json::Error| e.to_string();
    match event.topic {
        ORDER_PAID => {
            let paid: OrderPaid = serde_json::from_str(event.payload).map_err(unreadable)?;
            Ok((shop_day(paid.paid_at, tz), Change::Sold(paid.items)))
        }
        ORDER_CANCELLED => {
            let cancelled: OrderCancelled =
                serde_json::from_str(event.payload).map_err(unreadable)?;
            let day = shop_day(cancelled.paid_at, tz);
            Ok((day, Change::TakenBack(cancelled.items)))
        }
        other => Err(format!("unknown topic {other}")),
    }
}

/// A cancelled order's sales come off the day it was placed.
async fn take_back(
    conn: &mut dyn Conn,
    day: NaiveDate,
    items: &[SoldItem],
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // Waits for a daily job running for the same day, so that the day is either finalized
    // already (and recomputed here without the cancelled order) or will be computed after this
    // cancellation.
    conn.lock_day(day).await?;
    let negated: Vec<SoldItem> = items
        .iter()
        .map(|i| SoldItem {
            product_id: i.product_id,
            quantity: -i.quantity,
            amount: -i.amount,
        })
        .collect();
    conn.add_live_sales(day, &negated).await?;
    if conn.finalized_between(day, day).await?.contains(&day) {
        daily::aggregate(conn, day, tz, now).await?;
    }
    Ok(())
}

const DURABLE: &str = "platform";
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// With NATS configured, the platform's side: a durable pull consumer on the stream, each
/// message applied then acknowledged. Whenever it stops (NATS away, the stream or the consumer
/// gone) it starts over, creating what is missing, with backoff; at once when NATS reconnects,
/// since a server restarted without its store has lost both.
pub async fn consume_jetstream(
    state: PlatformState,
    nats: Option<JetStream>,
    shutdown: CancellationToken,
) {
    let Some(nats) = nats else {
        return;
    };
    let mut backoff = FIRST_RETRY;
    loop {
        let mut subscribed = false;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = nats.reconnected() => {
                backoff = FIRST_RETRY;
                continue;
            }
            result = consume_messages(&state, &nats, &mut subscribed) => {
                if let Err(error) = result {
                    tracing::warn!(%error, retry_in = ?backoff, "the JetStream consumer stopped");
                }
            }
        }
        if subscribed {
            backoff = FIRST_RETRY;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_RETRY);
    }
}

/// Creates the stream and the consumer when missing, then applies messages until an error;
/// `subscribed` says whether it got that far.
async fn consume_messages(
    state: &PlatformState,
    nats: &JetStream,
    subscribed: &mut bool,
) -> Result<(), String> {
    let config = pull::Config {
        durable_name: Some(DURABLE.to_owned()),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    };
    let consumer = nats
        .stream_handle()
        .await?
        .get_or_create_consumer(DURABLE, config)
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    *subscribed = true;
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
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|h| h.get(telemetry::TRACEPARENT))
            .map(|v| v.as_str());
        consume(
            state,
            &[Delivered {
                id,
                topic: &topic,
                payload: &payload,
                traceparent,
            }],
        )
        .await
        .map_err(|e| e.to_string())?;
        message.ack().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
