//! NATS restarted with an empty store while commerce runs: its stream and the platform's
//! consumer are gone. The relay and the consumer create them again and catch up by themselves.
//! Likewise when the stream is deleted while NATS stays up.

use crate::harness::{Backend, TestApp};
use crate::platform::{buy, popular, ranking};
use crate::platform_nats::{
    eventually, nats_settings, on_nats, on_private_nats, redeliver_the_stream, undelivered,
    wait_for_ranking, PrivateNats, SHARED_NATS,
};
use serde_json::{json, Value};
use std::time::Duration;

/// Today's live figures from the admin statistics.
async fn todays_sales(app: &TestApp) -> Value {
    let response = app
        .get("/api/v1/admin/stats/daily-sales?date=2026-11-24")
        .token(&app.admin())
        .send()
        .await;
    response.body["items"].clone()
}

async fn the_platform_catches_up_after_nats_restarts_with_an_empty_store(backend: Backend) {
    let (nats, app, transport, shutdown) = on_private_nats(backend).await;
    let a = app.product("A", 100, 100).await;
    let b = app.product("B", 100, 100).await;
    buy(&app, 1, a, 1).await;
    buy(&app, 2, b, 2).await;
    wait_for_ranking(&app, vec![(b, 2), (a, 1)], Duration::from_secs(10)).await;

    // Dropping the directory deletes the store: the server comes back without the stream.
    let (port, store) = nats.stop().await;
    drop(store);
    buy(&app, 3, a, 3).await;
    let nats = PrivateNats::start(port, tempfile::tempdir().unwrap()).await;
    buy(&app, 4, b, 4).await;

    let expected = vec![(b, 6), (a, 4)];
    wait_for_ranking(&app, expected.clone(), Duration::from_secs(10)).await;
    let day = json!([
        {"product_id": a, "quantity": 4, "amount": 400},
        {"product_id": b, "quantity": 6, "amount": 600},
    ]);
    eventually(
        Duration::from_secs(10),
        || todays_sales(&app),
        |seen| *seen == day,
    )
    .await;
    assert_eq!(undelivered(&app).await, 0);
    // The new stream holds the two events sent after the restart, each once, and delivering
    // them again changes nothing.
    let nats_stream = transport.jetstream().unwrap();
    assert_eq!(redeliver_the_stream(&nats_stream).await, 2);
    assert_eq!(ranking(&popular(&app).await), expected);
    assert_eq!(todays_sales(&app).await, day);
    shutdown.cancel();
    nats.stop().await;
}

/// Without a reconnection to tell: the relay learns it from a publish that finds no stream, the
/// consumer from the server telling it it was deleted with the stream.
async fn a_stream_deleted_under_a_running_service_is_created_again(backend: Backend) {
    let settings = nats_settings(&format!("nats://{SHARED_NATS}"));
    let (app, transport, shutdown) = on_nats(backend, settings).await;
    let nats = transport.jetstream().unwrap();
    let a = app.product("A", 100, 100).await;
    buy(&app, 1, a, 1).await;
    wait_for_ranking(&app, vec![(a, 1)], Duration::from_secs(10)).await;

    nats.context().delete_stream(nats.stream()).await.unwrap();
    buy(&app, 2, a, 2).await;
    wait_for_ranking(&app, vec![(a, 3)], Duration::from_secs(10)).await;
    assert_eq!(undelivered(&app).await, 0);
    shutdown.cancel();
    let _ = nats.context().delete_stream(nats.stream()).await;
}

crate::with_nats_on_both_backends!(
    the_platform_catches_up_after_nats_restarts_with_an_empty_store,
    a_stream_deleted_under_a_running_service_is_created_again,
);
