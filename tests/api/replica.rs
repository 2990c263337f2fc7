//! Reads from a PostgreSQL streaming replica: the catalogue comes from the replica, a user's own
//! data from the primary, and a replica that goes down leaves every read answered by the primary.

use axum::http::StatusCode;
use commerce::app::AppState;
use commerce::store::Batching;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;
use crate::own_postgres::OwnPostgres;

/// Polls `path` on `instance` until `check` holds for the answer, for at most 10 s.
async fn eventually(
    app: &TestApp,
    instance: &Arc<AppState>,
    path: &str,
    check: impl Fn(&Response) -> bool,
) -> Response {
    let mut last = None;
    for _ in 0..100 {
        let answer = app.get_from(instance, path).send().await;
        if check(&answer) {
            return answer;
        }
        last = Some(answer);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never answered as expected: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalogue_reads_come_from_the_replica_and_fall_back_to_the_primary() {
    let primary = OwnPostgres::start();
    let app = TestApp::at_url(Backend::Postgres, &primary.url()).await;
    let standby = primary.standby();
    let db = commerce::store::connect_batched(
        &primary.url(),
        Some(&standby.url()),
        8,
        Batching::default(),
    )
    .await
    .expect("primary and replica");
    let instance = AppState::new(db, app.state.settings.clone(), SECRET, app.clock.clone());

    let id = app.product("Mirrored", 1_000, 10).await;
    eventually(&app, &instance, &format!("/api/v1/products/{id}"), |r| {
        r.status == StatusCode::OK
    })
    .await;

    // With the replica's replay paused, a change on the primary is not seen by catalogue reads
    // (they come from the replica), while a user's own balance is fresh (from the primary).
    let replica = sqlx::PgPool::connect(&standby.url())
        .await
        .expect("replica");
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&replica)
        .await
        .expect("pause replay");
    let patched = app
        .patch(&format!("/api/v1/admin/products/{id}"))
        .token(&app.admin())
        .json(json!({"price": 2_000}))
        .send()
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let charged = app
        .post_to(&instance, "/api/v1/me/balance/charges")
        .token(&app.token(7))
        .json(json!({"amount": 5_000}))
        .send()
        .await;
    assert_eq!(charged.status, StatusCode::OK, "{}", charged.text);
    let balance = app
        .get_from(&instance, "/api/v1/me/balance")
        .token(&app.token(7))
        .send()
        .await;
    assert_eq!(
        balance.body["balance"], 5_000,
        "own data is read from the primary"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await; // past the product cache's TTL
    let stale = app
        .get_from(&instance, &format!("/api/v1/products/{id}"))
        .send()
        .await;
    assert_eq!(
        stale.body["price"], 1_000,
        "the catalogue is read from the replica"
    );

    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&replica)
        .await
        .expect("resume replay");
    replica.close().await;
    eventually(&app, &instance, &format!("/api/v1/products/{id}"), |r| {
        r.body["price"] == 2_000
    })
    .await;

    // The replica goes down: every catalogue read is answered, by the primary.
    standby.stop();
    for path in [
        format!("/api/v1/products/{id}"),
        "/api/v1/products".to_owned(),
        "/api/v1/products/popular".to_owned(),
        "/api/v1/coupons".to_owned(),
    ] {
        let answer = app.get_from(&instance, &path).send().await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
    }
    let stats = app
        .get_from(&instance, "/api/v1/admin/stats/daily-sales?date=2026-11-23")
        .token(&app.admin())
        .send()
        .await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.text);
}
