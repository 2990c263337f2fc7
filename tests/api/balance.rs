use crate::harness::{concurrently, Backend, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;
use serde_json::json;

async fn a_new_user_has_balance_zero(backend: Backend) {
    let app = TestApp::new(backend).await;
    let response = app
        .get("/api/v1/me/balance")
        .token(&app.token(7))
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, json!({"user_id": 7, "balance": 0}));
}

async fn charging_adds_to_the_balance_and_writes_history(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = app.token(7);
    let first = app
        .post("/api/v1/me/balance/charges")
        .token(&token)
        .json(json!({"amount": 15000}))
        .send()
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["balance"], 15000);
    app.clock.advance(chrono::Duration::minutes(90));
    let second = app
        .post("/api/v1/me/balance/charges")
        .token(&token)
        .json(json!({"amount": 5000}))
        .send()
        .await;
    assert_eq!(second.body["user_id"], 7);
    assert_eq!(second.body["balance"], 20000);
    assert_eq!(second.body["charged"], 5000);
    assert!(
        second.body["history_id"].as_i64().unwrap() > first.body["history_id"].as_i64().unwrap()
    );
    assert_eq!(app.balance(7).await, 20000);

    let history = app
        .get("/api/v1/me/balance/history")
        .token(&token)
        .send()
        .await;
    assert_eq!(history.status, StatusCode::OK);
    let items = history.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "CHARGE");
    assert_eq!(items[0]["amount"], 5000);
    assert_eq!(items[0]["balance_after"], 20000);
    assert_eq!(items[0]["order_id"], json!(null));
    assert!(items[0]["created_at"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-24T04:30:00"));
    assert!(items[1]["created_at"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-24T03:00:00"));
    assert_eq!(items[1]["amount"], 15000);
    assert_eq!(history.body["next_cursor"], json!(null));
}

async fn charging_zero_is_rejected(backend: Backend) {
    let app = TestApp::new(backend).await;
    for amount in [0, -100] {
        let response = app
            .post("/api/v1/me/balance/charges")
            .token(&app.token(7))
            .json(json!({"amount": amount}))
            .send()
            .await;
        response.assert_problem(StatusCode::BAD_REQUEST, "INVALID_AMOUNT");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM balance_history").await, 0);
}

async fn charging_more_than_the_maximum_charge_is_rejected(backend: Backend) {
    let app = TestApp::new(backend).await;
    let response = app
        .post("/api/v1/me/balance/charges")
        .token(&app.token(7))
        .json(json!({"amount": 1_000_001}))
        .send()
        .await;
    response.assert_problem(StatusCode::BAD_REQUEST, "INVALID_AMOUNT");
    let response = app
        .post("/api/v1/me/balance/charges")
        .token(&app.token(7))
        .json(json!({"amount": 1_000_000}))
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK);
}

async fn a_fractional_amount_is_a_validation_error(backend: Backend) {
    let app = TestApp::new(backend).await;
    for body in [
        r#"{"amount": 10.5}"#,
        r#"{"amount": "100"}"#,
        r#"{"amount": 99999999999999999999}"#,
        r#"{}"#,
    ] {
        let response = app
            .post("/api/v1/me/balance/charges")
            .token(&app.token(7))
            .raw(body)
            .send()
            .await;
        response.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
}

async fn the_balance_cannot_pass_the_maximum(backend: Backend) {
    let settings = commerce::config::Settings {
        max_balance: commerce::money::Won(25_000),
        ..crate::harness::settings()
    };
    let app = TestApp::with_settings(backend, settings).await;
    app.charge(7, 20_000).await;
    let response = app
        .post("/api/v1/me/balance/charges")
        .token(&app.token(7))
        .json(json!({"amount": 5001}))
        .send()
        .await;
    response.assert_problem(StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED");
    assert_eq!(app.balance(7).await, 20_000);
    app.charge(7, 5000).await;
    assert_eq!(app.balance(7).await, 25_000);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM balance_history").await, 2);
}

async fn users_only_see_their_own_balance(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.charge(1, 1000).await;
    assert_eq!(app.balance(2).await, 0);
    let history = app
        .get("/api/v1/me/balance/history")
        .token(&app.token(2))
        .send()
        .await;
    assert_eq!(history.body["items"], json!([]));
}

async fn history_pages_with_a_cursor(backend: Backend) {
    let app = TestApp::new(backend).await;
    for amount in 1..=5 {
        app.charge(7, amount).await;
    }
    let token = app.token(7);
    let first = app
        .get("/api/v1/me/balance/history?limit=2")
        .token(&token)
        .send()
        .await;
    let amounts = |r: &crate::harness::Response| -> Vec<i64> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["amount"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(amounts(&first), vec![5, 4]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!(
            "/api/v1/me/balance/history?limit=2&cursor={cursor}"
        ))
        .token(&token)
        .send()
        .await;
    assert_eq!(amounts(&second), vec![3, 2]);
    let cursor = second.body["next_cursor"].as_str().unwrap().to_owned();
    let third = app
        .get(&format!(
            "/api/v1/me/balance/history?limit=2&cursor={cursor}"
        ))
        .token(&token)
        .send()
        .await;
    assert_eq!(amounts(&third), vec![1]);
    assert_eq!(third.body["next_cursor"], json!(null));
}

async fn two_hundred_concurrent_charges_all_apply(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = app.token(7);
    let calls = (0..200).map(|_| {
        app.post("/api/v1/me/balance/charges")
            .token(&token)
            .json(json!({"amount": 100}))
    });
    for response in concurrently(calls).await {
        assert_eq!(response.status, StatusCode::OK);
    }
    assert_eq!(app.balance(7).await, 20_000);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM balance_history WHERE user_id = 7")
            .await,
        200
    );
    assert_eq!(
        app.scalar("SELECT CAST(SUM(amount) AS BIGINT) FROM balance_history WHERE user_id = 7")
            .await,
        20_000
    );
}

async fn twenty_concurrent_retries_with_one_key_apply_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = app.token(7);
    let calls = (0..20).map(|_| {
        app.post("/api/v1/me/balance/charges")
            .token(&token)
            .header("idempotency-key", "charge-once")
            .json(json!({"amount": 700}))
    });
    let responses = concurrently(calls).await;
    for response in &responses {
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        assert_eq!(
            response.body, responses[0].body,
            "every retry gets the first response"
        );
    }
    assert_eq!(app.balance(7).await, 700);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM balance_history").await, 1);
}

async fn a_retry_replays_a_rejection_too(backend: Backend) {
    let settings = commerce::config::Settings {
        max_balance: commerce::money::Won(1000),
        ..crate::harness::settings()
    };
    let app = TestApp::with_settings(backend, settings).await;
    app.charge(7, 900).await;
    let send = || {
        app.post("/api/v1/me/balance/charges")
            .token(&app.token(7))
            .header("idempotency-key", "k1")
            .json(json!({"amount": 200}))
            .send()
    };
    let first = send().await;
    first.assert_problem(StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED");
    // Spend 500, so running the charge again would now succeed: a retry must not run it again.
    let mug = app.product("Mug", 500, 1).await;
    let order = app
        .post("/api/v1/orders")
        .token(&app.token(7))
        .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
        .send()
        .await;
    assert_eq!(order.status, StatusCode::CREATED);
    let again = send().await;
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body);
    assert_eq!(app.balance(7).await, 400);
}

async fn a_key_reused_with_another_body_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = app.token(7);
    let send = |amount: i64| {
        app.post("/api/v1/me/balance/charges")
            .token(&token)
            .header("idempotency-key", "k1")
            .json(json!({"amount": amount}))
            .send()
    };
    assert_eq!(send(100).await.status, StatusCode::OK);
    send(200)
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.balance(7).await, 100);
}

async fn keys_are_per_user(backend: Backend) {
    let app = TestApp::new(backend).await;
    for user in [1, 2] {
        let response = app
            .post("/api/v1/me/balance/charges")
            .token(&app.token(user))
            .header("idempotency-key", "same-key")
            .json(json!({"amount": 100}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK);
    }
    assert_eq!(app.balance(1).await, 100);
    assert_eq!(app.balance(2).await, 100);
}

async fn a_bad_idempotency_key_is_a_validation_error(backend: Backend) {
    let app = TestApp::new(backend).await;
    let long = "k".repeat(256);
    for key in ["", long.as_str()] {
        let response = app
            .post("/api/v1/me/balance/charges")
            .token(&app.token(7))
            .header("idempotency-key", key)
            .json(json!({"amount": 100}))
            .send()
            .await;
        response.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    assert_eq!(app.balance(7).await, 0);
}

on_both_backends!(
    a_new_user_has_balance_zero,
    charging_adds_to_the_balance_and_writes_history,
    charging_zero_is_rejected,
    charging_more_than_the_maximum_charge_is_rejected,
    a_fractional_amount_is_a_validation_error,
    the_balance_cannot_pass_the_maximum,
    users_only_see_their_own_balance,
    history_pages_with_a_cursor,
    two_hundred_concurrent_charges_all_apply,
    twenty_concurrent_retries_with_one_key_apply_once,
    a_retry_replays_a_rejection_too,
    a_key_reused_with_another_body_is_refused,
    keys_are_per_user,
    a_bad_idempotency_key_is_a_validation_error,
);
