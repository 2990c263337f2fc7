//! The webhook worker: fans events out of the outbox into deliveries, then claims the due
//! deliveries and sends them, each on a task of its own, outside any transaction.
//!
//! Fan-out and claims are writes through the committer; a send is not, so a slow or dead
//! receiver holds one of [`SLOTS`] tasks and nothing else. A claim is a lease
//! (`claimed_until`): two instances never send one delivery at the same time, and a delivery
//! whose sender died goes out again once its lease expires.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::guard::{self, GuardedResolver, Target};
use super::signing;
use crate::clock::Clock;
use crate::ids::OrderId;
use crate::order::Order;
use crate::outbox;
use crate::store::webhook::{
    AttemptOutcome, ClaimedDelivery, DeliveryStatus, NewDeliveryRow, UnfannedEvent, WebhookRow,
};
use crate::store::{Conn, Db, StoreError};

/// Events fanned out per write.
const BATCH: i64 = 100;
/// Sends in flight at once per instance.
const SLOTS: usize = 32;
/// Sends in flight at once to one webhook, over all instances: a receiver that hangs holds
/// this many senders, and the others go on serving the other receivers.
const PER_RECEIVER: i64 = 4;
/// A receiver must answer within this.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A claim outlives the longest send by a wide margin.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// How often the worker looks for work when nothing woke it (another instance's events).
const POLL: Duration = Duration::from_millis(500);
/// Failed attempts are retried for this long after the delivery was created (or retried by
/// an admin), then it is `FAILED`.
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(24);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Longest `last_error` kept.
const MAX_ERROR_CHARS: usize = 500;

/// Wakes the delivery worker: a delivery became due (an admin's retry) or a send finished.
#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// What the worker works with.
#[derive(Clone)]
pub struct Worker {
    db: Db,
    clock: Arc<dyn Clock>,
    outbox: outbox::Signal,
    wake: Wake,
    allow_private: bool,
    client: reqwest::Client,
    slots: Arc<Semaphore>,
}

impl Worker {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        outbox: outbox::Signal,
        wake: Wake,
        allow_private: bool,
    ) -> Result<Worker, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(SEND_TIMEOUT)
            // A proxy would resolve names itself, past the guard.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .user_agent("commerce-webhooks")
            .build()?;
        Ok(Worker {
            db,
            clock,
            outbox,
            wake,
            allow_private,
            client,
            slots: Arc::new(Semaphore::new(SLOTS)),
        })
    }
}

/// Fans out and delivers until `shutdown`: woken by commits that wrote events, by retries and
/// finished sends, and at the next delivery's due time, polling as a backstop. Sends in flight
/// at shutdown are abandoned; their leases expire and another attempt follows.
pub async fn run(worker: Worker, shutdown: CancellationToken) {
    loop {
        let pause = step(&worker).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "webhook fan-out or claim failed; retrying");
            POLL
        });
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = worker.outbox.fan_out_notified() => {}
            _ = worker.wake.0.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// One pass: fans out waiting events, starts the due sends; how long to wait for the next.
async fn step(worker: &Worker) -> Result<Duration, StoreError> {
    // A read first, so an idle worker costs the committer nothing.
    let backlog = worker.db.read().await?.webhook_backlog().await?;
    let now = worker.clock.now();
    let fanned = if backlog.events_to_fan_out {
        fan_out(worker).await?
    } else {
        0
    };
    if fanned == BATCH as usize {
        return Ok(Duration::ZERO);
    }
    let due = backlog.next_due.is_some_and(|due| due <= now);
    if (fanned > 0 || due) && dispatch(worker).await? > 0 {
        return Ok(Duration::ZERO);
    }
    if worker.slots.available_permits() == 0 {
        // A finished send wakes the worker.
        return Ok(POLL);
    }
    Ok(backlog.next_due.map_or(POLL, |due| {
        (due - now)
            .to_std()
            .unwrap_or_default()
            .clamp(Duration::from_millis(10), POLL)
    }))
}

/// Creates the deliveries of up to a batch of events not yet fanned out and marks them, in one
/// write; how many events it handled. Without webhooks it is not called (see
/// `webhook_backlog`): events wait unmarked, at no cost to the orders, until a registration
/// marks them.
pub async fn fan_out(worker: &Worker) -> Result<usize, StoreError> {
    let now = worker.clock.now();
    worker
        .db
        .write(move |conn| {
            Box::pin(async move {
                let hooks = conn.all_webhooks().await?;
                if hooks.is_empty() {
                    // The last one was deleted meanwhile; a registration marks what waits.
                    return Ok(0);
                }
                let events = conn.events_to_fan_out(BATCH).await?;
                let mut rows = Vec::new();
                for event in &events {
                    let subscribed: Vec<&WebhookRow> = hooks
                        .iter()
                        .filter(|h| h.events.contains(&event.topic))
                        .collect();
                    if subscribed.is_empty() {
                        continue;
                    }
                    let body = body(conn, event).await?;
                    rows.extend(subscribed.into_iter().map(|hook| NewDeliveryRow {
                        webhook_id: hook.id,
                        event_id: event.id,
                        event: event.topic.clone(),
                        body: body.clone(),
                        expires_at: now + GIVE_UP_AFTER,
                    }));
                }
                if !rows.is_empty() {
                    conn.insert_deliveries(&rows, now).await?;
                }
                let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
                conn.mark_fanned_out(Some(&ids), now).await?;
                Ok(events.len())
            })
        })
        .await
}

/// An order event's payload: the order it is about.
#[derive(Deserialize)]
struct AboutOrder {
    order_id: i64,
}

/// The request body of an event: `{"id", "type", "occurred_at", "data": the order}`, the order
/// as `GET /orders/{id}` shows it when the event is fanned out.
async fn body(conn: &mut dyn Conn, event: &UnfannedEvent) -> Result<String, StoreError> {
    let about: AboutOrder =
        serde_json::from_str(&event.payload).map_err(|_| StoreError::corrupt(&event.payload))?;
    let id = OrderId::new(about.order_id).ok_or_else(|| StoreError::corrupt(about.order_id))?;
    let order = conn
        .order(id)
        .await?
        .ok_or_else(|| StoreError::corrupt(format!("event {} names no order", event.id)))?;
    let body = serde_json::json!({
        "id": event.id,
        "type": event.topic,
        "occurred_at": event.created_at,
        "data": Order::from(order),
    });
    Ok(body.to_string())
}

/// Claims as many due deliveries as there are free slots and starts their sends; how many.
async fn dispatch(worker: &Worker) -> Result<usize, StoreError> {
    let free = worker.slots.available_permits();
    if free == 0 {
        return Ok(0);
    }
    let now = worker.clock.now();
    let claimed = worker
        .db
        .write(move |conn| {
            Box::pin(async move {
                conn.claim_deliveries(now, now + LEASE, free as i64, PER_RECEIVER)
                    .await
            })
        })
        .await?;
    let count = claimed.len();
    for delivery in claimed {
        let permit = worker
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        tokio::spawn(attempt(worker.clone(), delivery, permit));
    }
    Ok(count)
}

/// Sends one delivery and records the outcome; a failure to record leaves the claim to
/// expire, and the delivery goes out again (at least once).
async fn attempt(worker: Worker, delivery: ClaimedDelivery, permit: OwnedSemaphorePermit) {
    let sent = send(&worker, &delivery).await;
    let outcome = outcome(&delivery, sent, worker.clock.now());
    let id = delivery.id;
    let recorded = worker
        .db
        .write(move |conn| {
            let outcome = outcome.clone();
            Box::pin(async move { conn.record_attempt(id, &outcome).await })
        })
        .await;
    if let Err(error) = recorded {
        tracing::warn!(%error, delivery = id, "a webhook attempt's outcome was not recorded");
    }
    drop(permit);
    worker.wake.notify();
}

/// `POST`s the delivery: the receiver's status, or why none came.
async fn send(worker: &Worker, delivery: &ClaimedDelivery) -> Result<u16, String> {
    let (url, target) = guard::parse(&delivery.url)?;
    // reqwest resolves names through the guard but connects to a written address directly.
    if let Target::Ip(ip) = target {
        if let Some(why) = guard::refusal(ip, worker.allow_private) {
            return Err(why);
        }
    }
    let t = worker.clock.now().timestamp();
    let response = worker
        .client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Commerce-Event", &delivery.event)
        .header("Commerce-Delivery", delivery.id.to_string())
        .header(
            "Commerce-Signature",
            signing::signature(&delivery.secret, t, &delivery.body),
        )
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(|error| describe(&error))?;
    Ok(response.status().as_u16())
}

/// An error with its causes, which say what actually went wrong (refused, timed out...).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}

fn outcome(
    delivery: &ClaimedDelivery,
    sent: Result<u16, String>,
    at: DateTime<Utc>,
) -> AttemptOutcome {
    let (status_code, error) = match sent {
        Ok(code) if (200..300).contains(&code) => {
            return AttemptOutcome {
                status: DeliveryStatus::Delivered,
                status_code: Some(code.into()),
                error: None,
                next_attempt_at: None,
                at,
            }
        }
        Ok(code) => (Some(code.into()), format!("the receiver answered {code}")),
        Err(error) => (None, error),
    };
    let (status, next_attempt_at) = if at >= delivery.expires_at {
        (DeliveryStatus::Failed, None)
    } else {
        let wait = backoff(delivery.attempts + 1);
        let wait = chrono::Duration::from_std(wait).expect("at most an hour");
        (DeliveryStatus::Pending, Some(at + wait))
    };
    AttemptOutcome {
        status,
        status_code,
        error: Some(error),
        next_attempt_at,
        at,
    }
}

/// The wait after the `failed`-th failed attempt: 1 s, 2 s, 4 s … capped at an hour, each
/// ±20 % at random so that receivers coming back are not hit by every retry at once.
pub fn backoff(failed: i64) -> Duration {
    let doublings = u32::try_from(failed.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(12);
    let full = (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF);
    full.mul_f64(rand::rng().random_range(0.8..=1.2))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped_at_an_hour() {
        for failed in 1..=40 {
            let full = (FIRST_BACKOFF.as_secs_f64() * 2f64.powi(failed as i32 - 1)).min(3600.0);
            for _ in 0..50 {
                let wait = backoff(failed).as_secs_f64();
                assert!(wait >= full * 0.8 - 1e-9, "{failed}: {wait}");
                assert!(wait <= (full * 1.2).min(3600.0) + 1e-9, "{failed}: {wait}");
            }
        }
        // ±20 % never undoes a doubling: each wait is longer than any before it, up to the cap.
        for failed in 1..=11 {
            assert!(backoff(failed + 1) > backoff(failed), "{failed}");
        }
        assert!(backoff(i64::MAX) <= MAX_BACKOFF);
        assert!(backoff(i64::MAX) >= MAX_BACKOFF.mul_f64(0.8));
    }
}
