//! The webhook store's contract, run by each backend's real-database tests on its own `Db`
//! (included there with `#[path]`, so both backends are held to the same assertions).

use chrono::{DateTime, Duration, Utc};
use commerce_domain::page::PageRequest;
use commerce_store::webhook::{
    AttemptOutcome, DeliveryStatus, NewDeliveryRow, NewWebhookRow, UnfannedEvent, WebhookRow,
};
use commerce_store::{Conn, Db, StoreError};
use futures::future::BoxFuture;

/// Runs `work` as a write and unwraps it.
async fn write<T: Send + 'static>(
    db: &Db,
    work: impl for<'c> Fn(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, StoreError>>
        + Send
        + Sync
        + 'static,
) -> T {
    db.write(move |conn| work(conn)).await.expect("written")
}

async fn add_events(db: &Db, at: DateTime<Utc>, n: i64) {
    write(db, move |conn| {
        Box::pin(async move {
            let events: Vec<_> = (1..=n)
                .map(|i| (format!(r#"{{"order_id":{i}}}"#), at, None))
                .collect();
            conn.insert_events("order.paid", &events).await
        })
    })
    .await
}

async fn unfanned(db: &Db) -> Vec<UnfannedEvent> {
    write(db, |conn| Box::pin(conn.events_to_fan_out(10))).await
}

pub async fn webhooks_fan_out_claim_and_record(db: &Db) {
    let now = DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap();
    // No webhook: events wait unmarked, and none is due for the fan-out; delivered ones are
    // pruned all the same. A registration marks every waiting event in one statement.
    add_events(db, now, 3).await;
    assert_eq!(unfanned(db).await.len(), 3);
    let backlog = db.read().await.unwrap().webhook_backlog().await.unwrap();
    assert!(!backlog.events_to_fan_out);
    let pruned = write(db, move |conn| {
        Box::pin(async move {
            let first = conn.pending_events(1).await?;
            conn.mark_delivered(&[first[0].id], now).await?;
            conn.prune_outbox(now + Duration::days(1)).await
        })
    })
    .await;
    assert_eq!(pruned, 1);
    assert_eq!(unfanned(db).await.len(), 2);
    write(db, move |conn| Box::pin(conn.mark_fanned_out(None, now))).await;
    assert!(unfanned(db).await.is_empty());

    let hook: WebhookRow = write(db, move |conn| {
        Box::pin(async move {
            let row = NewWebhookRow {
                url: "https://shop.example/hook",
                events: &["order.paid", "order.cancelled"],
                secret: "s3cret",
                created_at: now,
            };
            conn.insert_webhook(row).await
        })
    })
    .await;
    assert_eq!(hook.events, ["order.paid", "order.cancelled"]);
    assert_eq!(hook.created_at, now);
    let mut reader = db.read().await.unwrap();
    assert_eq!(reader.webhook(hook.id).await.unwrap().as_ref(), Some(&hook));
    assert_eq!(
        reader.all_webhooks().await.unwrap(),
        std::slice::from_ref(&hook)
    );
    let page = PageRequest {
        limit: 10,
        after: None,
    };
    assert_eq!(
        reader.webhooks(page).await.unwrap(),
        std::slice::from_ref(&hook)
    );
    drop(reader);

    // Deliveries for two events; inserting one twice keeps the first.
    add_events(db, now, 2).await;
    let events = unfanned(db).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].created_at, now);
    let rows: Vec<NewDeliveryRow> = events
        .iter()
        .map(|e| NewDeliveryRow {
            webhook_id: hook.id,
            event_id: e.id,
            event: e.topic.clone(),
            body: format!(r#"{{"id":{}}}"#, e.id),
            expires_at: now + Duration::hours(24),
        })
        .collect();
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    write(db, move |conn| {
        let (rows, ids) = (rows.clone(), ids.clone());
        Box::pin(async move {
            conn.insert_deliveries(&rows, now).await?;
            conn.insert_deliveries(&rows[..1], now).await?;
            conn.mark_fanned_out(Some(&ids), now).await
        })
    })
    .await;
    assert!(unfanned(db).await.is_empty());
    let backlog = db.read().await.unwrap().webhook_backlog().await.unwrap();
    assert!(!backlog.events_to_fan_out);
    assert_eq!(backlog.next_due, Some(now));

    // One at a time per receiver: a second claim waits while the first is in flight; with
    // room for two, the other goes; claimed once: a claim while the leases run gets nothing.
    let until = now + Duration::seconds(60);
    let claim = move |per_receiver| {
        write(db, move |conn| {
            Box::pin(conn.claim_deliveries(now, until, 10, per_receiver))
        })
    };
    let mut claimed = claim(1).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].url, hook.url);
    assert_eq!(claimed[0].secret, "s3cret");
    assert!(claim(1).await.is_empty(), "the receiver is busy");
    claimed.extend(claim(2).await);
    assert_eq!(claimed.len(), 2);
    assert_ne!(claimed[0].id, claimed[1].id);
    assert!(claim(10).await.is_empty());
    let backlog = db.read().await.unwrap().webhook_backlog().await.unwrap();
    assert_eq!(
        backlog.next_due,
        Some(until),
        "due again when the lease ends"
    );

    let (first, second) = (
        claimed[0].id.min(claimed[1].id),
        claimed[0].id.max(claimed[1].id),
    );
    let later = now + Duration::seconds(2);
    write(db, move |conn| {
        Box::pin(async move {
            let delivered = AttemptOutcome {
                status: DeliveryStatus::Delivered,
                status_code: Some(204),
                error: None,
                next_attempt_at: None,
                at: later,
            };
            conn.record_attempt(first, &delivered).await?;
            let failed = AttemptOutcome {
                status: DeliveryStatus::Pending,
                status_code: Some(500),
                error: Some("the receiver answered 500".into()),
                next_attempt_at: Some(later + Duration::seconds(1)),
                at: later,
            };
            conn.record_attempt(second, &failed).await
        })
    })
    .await;
    let log = db
        .read()
        .await
        .unwrap()
        .deliveries(hook.id, page)
        .await
        .unwrap();
    assert_eq!(
        log.iter().map(|d| d.id).collect::<Vec<_>>(),
        [second, first]
    );
    assert_eq!(log[0].status, DeliveryStatus::Pending);
    assert_eq!(log[0].attempts, 1);
    assert_eq!(log[0].last_status_code, Some(500));
    assert_eq!(log[0].next_attempt_at, Some(later + Duration::seconds(1)));
    assert_eq!(log[1].status, DeliveryStatus::Delivered);
    assert_eq!(log[1].delivered_at, Some(later));
    assert_eq!(log[1].last_error, None);

    // A retry makes a delivered one pending and due at once; an unknown one is not found.
    let retried = write(db, move |conn| {
        Box::pin(conn.retry_delivery(first, later, later + Duration::hours(24)))
    })
    .await;
    assert!(retried);
    assert!(
        !write(db, move |conn| Box::pin(conn.retry_delivery(
            i64::MAX,
            later,
            later
        )))
        .await
    );
    let claimed = write(db, move |conn| {
        Box::pin(conn.claim_deliveries(later, later + Duration::seconds(60), 10, 10))
    })
    .await;
    assert_eq!(claimed.iter().map(|d| d.id).collect::<Vec<_>>(), [first]);

    // Pruning keeps delivered events the fan-out has not handled.
    add_events(db, now, 1).await;
    write(db, move |conn| {
        Box::pin(async move {
            let pending = conn.pending_events(10).await?;
            let ids: Vec<i64> = pending.iter().map(|e| e.id).collect();
            conn.mark_delivered(&ids, now).await?;
            conn.prune_outbox(now + Duration::days(1)).await
        })
    })
    .await;
    assert_eq!(unfanned(db).await.len(), 1);

    // Deleting a webhook deletes its deliveries.
    assert!(write(db, move |conn| Box::pin(conn.delete_webhook(hook.id))).await);
    assert!(!write(db, move |conn| Box::pin(conn.delete_webhook(hook.id))).await);
    let mut reader = db.read().await.unwrap();
    assert!(reader.deliveries(hook.id, page).await.unwrap().is_empty());
    assert!(reader.webhook(hook.id).await.unwrap().is_none());
}
