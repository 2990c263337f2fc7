//! Stored idempotent answers are the HTTP bytes, not the code's types: a replay survives any
//! change of the domain's error types between releases.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{Backend, TestApp};
use crate::on_both_backends;

async fn a_stored_answer_is_replayed_byte_for_byte_whatever_the_code_has_become(backend: Backend) {
    let app = TestApp::new(backend).await;
    let charge = || {
        app.post("/api/v1/me/balance/charges")
            .token(&app.token(7))
            .header("idempotency-key", "release-upgrade")
            .json(json!({"amount": 5000}))
    };
    assert_eq!(charge().send().await.status, StatusCode::OK);
    // An answer an older release stored, in a shape today's error types cannot produce.
    let old = r#"{"type":"urn:commerce:problem:some-old-code","title":"Some old code","status":409,"detail":"from an older release","code":"SOME_OLD_CODE"}"#;
    app.execute(&format!(
        "UPDATE idempotency_keys SET status = 409, body = '{old}'"
    ))
    .await;

    let replay = charge().send().await;
    assert_eq!(replay.status, StatusCode::CONFLICT);
    assert_eq!(replay.text, old);
    assert_eq!(
        replay.headers["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    assert_eq!(app.balance(7).await, 5000, "the replay changed nothing");
}

async fn a_replayed_success_is_the_first_answer_exactly(backend: Backend) {
    let app = TestApp::new(backend).await;
    let product = app.product("Kettle", 3000, 10).await;
    app.charge(3, 10_000).await;
    let order = || {
        app.post("/api/v1/orders")
            .token(&app.token(3))
            .header("idempotency-key", "order-1")
            .json(json!({"items": [{"product_id": product, "quantity": 1}]}))
    };
    let first = order().send().await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = order().send().await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.text, first.text);
    assert_eq!(
        again.headers["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert_eq!(app.balance(3).await, 7000);
}

on_both_backends!(
    a_stored_answer_is_replayed_byte_for_byte_whatever_the_code_has_become,
    a_replayed_success_is_the_first_answer_exactly,
);
