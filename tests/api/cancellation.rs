use crate::coupons::{create_coupon, fixed_coupon, issued};
use crate::harness::{concurrently, count_code, count_status, Backend, Response, TestApp};
use crate::invariants::{assert_balances_match_history, assert_stock_adds_up};
use crate::on_both_backends;
use crate::platform::{buy, platform_app, popular, ranking};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use commerce::config::Settings;
use serde_json::{json, Value};

async fn place(app: &TestApp, user: i64, body: Value) -> Response {
    app.post("/api/v1/orders")
        .token(&app.token(user))
        .json(body)
        .send()
        .await
}

async fn placed(app: &TestApp, user: i64, body: Value) -> i64 {
    let response = place(app, user, body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.body["id"].as_i64().unwrap()
}

pub async fn cancel(app: &TestApp, user: i64, order: i64) -> Response {
    app.post(&format!("/api/v1/orders/{order}/cancel"))
        .token(&app.token(user))
        .send()
        .await
}

async fn admin_cancel(app: &TestApp, order: i64) -> Response {
    app.post(&format!("/api/v1/admin/orders/{order}/cancel"))
        .token(&app.admin())
        .send()
        .await
}

async fn stock(app: &TestApp, product: i64) -> i64 {
    app.scalar(&format!("SELECT stock FROM products WHERE id = {product}"))
        .await
}

async fn coupon_status(app: &TestApp, user: i64) -> Value {
    app.get("/api/v1/me/coupons")
        .token(&app.token(user))
        .send()
        .await
        .body["items"][0]["status"]
        .clone()
}

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().unwrap()
}

async fn a_cancel_restores_stock_coupon_and_balance(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 9000, 10).await;
    let tea = app.product("Tea", 4500, 5).await;
    let coupon = fixed_coupon(&app, 2000, 10).await;
    let mine = issued(&app, 7, coupon).await;
    app.charge(7, 50_000).await;
    let id = placed(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 2}, {"product_id": tea, "quantity": 1}],
               "user_coupon_id": mine}),
    )
    .await;
    assert_eq!(app.balance(7).await, 29_500);
    assert_eq!(coupon_status(&app, 7).await, "USED");

    app.clock.advance(Duration::hours(1));
    let cancelled = cancel(&app, 7, id).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "CANCELLED");
    assert_eq!(cancelled.body["cancelled_at"], "2026-11-24T04:00:00Z");
    assert_eq!(cancelled.body["created_at"], "2026-11-24T03:00:00Z");
    assert_eq!(cancelled.body["paid_amount"], 20_500);
    let read = app
        .get(&format!("/api/v1/orders/{id}"))
        .token(&app.token(7))
        .send()
        .await;
    assert_eq!(read.body, cancelled.body, "the stored order says cancelled");

    assert_eq!((stock(&app, mug).await, stock(&app, tea).await), (10, 5));
    assert_eq!(coupon_status(&app, 7).await, "AVAILABLE");
    assert_eq!(app.balance(7).await, 50_000);
    let history = app
        .get("/api/v1/me/balance/history")
        .token(&app.token(7))
        .send()
        .await;
    assert_eq!(history.body["items"][0]["kind"], "REFUND");
    assert_eq!(history.body["items"][0]["amount"], 20_500);
    assert_eq!(history.body["items"][0]["balance_after"], 50_000);
    assert_eq!(history.body["items"][0]["order_id"], id);
    assert_balances_match_history(app.raw()).await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'order.cancelled'")
            .await,
        1
    );
}

async fn twenty_concurrent_cancels_refund_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 10).await;
    app.charge(7, 10_000).await;
    let id = placed(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 3}]}),
    )
    .await;
    let token = app.token(7);
    let answers = concurrently((0..20).map(|_| {
        app.post(&format!("/api/v1/orders/{id}/cancel"))
            .token(&token)
    }))
    .await;
    assert_eq!(count_status(&answers, StatusCode::OK), 1);
    assert_eq!(count_code(&answers, "ORDER_NOT_CANCELLABLE"), 19);
    assert_eq!(stock(&app, mug).await, 10);
    assert_eq!(app.balance(7).await, 10_000);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM balance_history WHERE kind = 'REFUND'")
            .await,
        1
    );
    assert_balances_match_history(app.raw()).await;
}

/// Cancels hand units back while new orders take them: stock + units sold stays constant and
/// never goes below zero.
async fn cancels_racing_new_orders_never_oversell(backend: Backend) {
    let app = TestApp::new(backend).await;
    let hot = app.product("Hot", 100, 60).await;
    for user in 1..=120 {
        app.charge(user, 1_000).await;
    }
    let mut first = Vec::new();
    for user in 1..=60 {
        first.push(
            placed(
                &app,
                user,
                json!({"items": [{"product_id": hot, "quantity": 1}]}),
            )
            .await,
        );
    }
    assert_eq!(stock(&app, hot).await, 0);
    let tokens: Vec<(i64, String)> = (1..=120).map(|u| (u, app.token(u))).collect();
    let calls = tokens.iter().flat_map(|(user, token)| {
        if *user <= 60 {
            let order = first[*user as usize - 1];
            vec![app
                .post(&format!("/api/v1/orders/{order}/cancel"))
                .token(token)]
        } else {
            vec![app
                .post("/api/v1/orders")
                .token(token)
                .json(json!({"items": [{"product_id": hot, "quantity": 1}]}))]
        }
    });
    let answers = concurrently(calls).await;
    assert_eq!(
        count_status(&answers, StatusCode::OK),
        60,
        "every cancel went through"
    );
    let won = count_status(&answers, StatusCode::CREATED) as i64;
    assert_eq!(
        count_status(&answers, StatusCode::CREATED) + count_code(&answers, "OUT_OF_STOCK"),
        60
    );
    assert_eq!(stock(&app, hot).await, 60 - won);
    assert_stock_adds_up(app.raw(), &[(hot, 60)]).await;
    assert_balances_match_history(app.raw()).await;
}

async fn an_expired_coupon_stays_expired_and_a_live_one_is_usable_once_more(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 5000, 10).await;
    let short = create_coupon(
        &app,
        json!({"name": "One day", "discount_type": "FIXED", "discount_value": 1000, "total_quantity": 5, "valid_days": 1}),
    )
    .await;
    let long = fixed_coupon(&app, 1000, 5).await;
    app.charge(7, 50_000).await;
    app.charge(8, 50_000).await;
    let expiring = issued(&app, 7, short).await;
    let lasting = issued(&app, 8, long).await;
    let body = |coupon: i64| json!({"items": [{"product_id": mug, "quantity": 1}], "user_coupon_id": coupon});
    let expired_order = placed(&app, 7, body(expiring)).await;
    let live_order = placed(&app, 8, body(lasting)).await;

    app.clock.advance(Duration::days(2));
    assert_eq!(cancel(&app, 7, expired_order).await.status, StatusCode::OK);
    assert_eq!(coupon_status(&app, 7).await, "EXPIRED");
    assert_eq!(
        place(&app, 7, body(expiring)).await.body["code"],
        "COUPON_NOT_USABLE"
    );

    assert_eq!(cancel(&app, 8, live_order).await.status, StatusCode::OK);
    assert_eq!(coupon_status(&app, 8).await, "AVAILABLE");
    let token = app.token(8);
    let answers =
        concurrently((0..5).map(|_| app.post("/api/v1/orders").token(&token).json(body(lasting))))
            .await;
    assert_eq!(
        count_status(&answers, StatusCode::CREATED),
        1,
        "usable again, once"
    );
    assert_eq!(count_code(&answers, "COUPON_NOT_USABLE"), 4);
    assert_eq!(coupon_status(&app, 8).await, "USED");
}

async fn who_may_cancel_and_when(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 10).await;
    app.charge(7, 10_000).await;
    let first = placed(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}]}),
    )
    .await;
    let second = placed(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}]}),
    )
    .await;

    cancel(&app, 8, first)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND");
    cancel(&app, 7, 999_999)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND");
    app.post(&format!("/api/v1/admin/orders/{first}/cancel"))
        .token(&app.token(7))
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    let anonymous = app
        .post(&format!("/api/v1/orders/{first}/cancel"))
        .send()
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // The window is 7 days by default: its last instant is still inside.
    app.clock.set(at("2026-12-01T03:00:00Z"));
    assert_eq!(cancel(&app, 7, first).await.status, StatusCode::OK);
    app.clock.set(at("2026-12-01T03:00:01Z"));
    let late = cancel(&app, 7, second).await;
    late.assert_problem(StatusCode::CONFLICT, "ORDER_NOT_CANCELLABLE");
    assert!(
        late.body["detail"].as_str().unwrap().contains("7days"),
        "{}",
        late.text
    );
    assert_eq!(
        stock(&app, mug).await,
        9,
        "a refused cancel changes nothing"
    );

    // An admin cancels any user's order, whenever it was placed, and only once.
    let by_admin = admin_cancel(&app, second).await;
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.text);
    assert_eq!(by_admin.body["user_id"], 7);
    admin_cancel(&app, second)
        .await
        .assert_problem(StatusCode::CONFLICT, "ORDER_NOT_CANCELLABLE");
    cancel(&app, 7, first)
        .await
        .assert_problem(StatusCode::CONFLICT, "ORDER_NOT_CANCELLABLE");
    admin_cancel(&app, 999_999)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND");
    assert_eq!(stock(&app, mug).await, 10);
    assert_eq!(app.balance(7).await, 10_000);
}

async fn the_window_is_a_setting(backend: Backend) {
    let settings = Settings {
        order_cancel_window: std::time::Duration::from_secs(60),
        ..crate::harness::settings()
    };
    let app = TestApp::with_settings(backend, settings).await;
    let mug = app.product("Mug", 1000, 10).await;
    app.charge(7, 10_000).await;
    let id = placed(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}]}),
    )
    .await;
    app.clock.advance(Duration::seconds(61));
    cancel(&app, 7, id)
        .await
        .assert_problem(StatusCode::CONFLICT, "ORDER_NOT_CANCELLABLE");
}

async fn a_refund_may_pass_the_maximum_balance(backend: Backend) {
    let settings = Settings {
        max_balance: commerce::money::Won(100_000),
        ..crate::harness::settings()
    };
    let app = TestApp::with_settings(backend, settings).await;
    let mug = app.product("Mug", 30_000, 10).await;
    app.charge(7, 100_000).await;
    let id = placed(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}]}),
    )
    .await;
    app.charge(7, 30_000).await;
    assert_eq!(cancel(&app, 7, id).await.status, StatusCode::OK);
    assert_eq!(app.balance(7).await, 130_000);
    assert_balances_match_history(app.raw()).await;
}

async fn a_free_order_is_cancelled_without_a_refund_row(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pen = app.product("Pen", 1000, 10).await;
    let coupon = fixed_coupon(&app, 5000, 10).await;
    let mine = issued(&app, 7, coupon).await;
    let id = placed(
        &app,
        7,
        json!({"items": [{"product_id": pen, "quantity": 1}], "user_coupon_id": mine}),
    )
    .await;
    let cancelled = cancel(&app, 7, id).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.body["paid_amount"], 0);
    assert_eq!(app.balance(7).await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM balance_history").await, 0);
    assert_eq!(coupon_status(&app, 7).await, "AVAILABLE");
}

async fn a_retried_cancel_with_its_key_replays_the_answer(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 10).await;
    app.charge(7, 10_000).await;
    let id = placed(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}]}),
    )
    .await;
    let send = || {
        app.post(&format!("/api/v1/orders/{id}/cancel"))
            .token(&app.token(7))
            .header("Idempotency-Key", "cancel-1")
            .send()
    };
    let first = send().await;
    assert_eq!(first.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(5));
    let again = send().await;
    assert_eq!(again.status, StatusCode::OK, "the first answer, not a 409");
    assert_eq!(again.text, first.text);
    assert_eq!(app.balance(7).await, 10_000);
    // The same key on another order is another request.
    let other = placed(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}]}),
    )
    .await;
    app.post(&format!("/api/v1/orders/{other}/cancel"))
        .token(&app.token(7))
        .header("Idempotency-Key", "cancel-1")
        .send()
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED");
}

async fn popular_products_drop_cancelled_sales(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 1000, 100).await;
    let b = app.product("B", 1000, 100).await;
    buy(&app, 1, a, 5).await;
    buy(&app, 2, b, 3).await;
    app.charge(3, 10_000).await;
    let big = placed(
        &app,
        3,
        json!({"items": [{"product_id": b, "quantity": 4}]}),
    )
    .await;
    app.deliver_events().await;
    assert_eq!(ranking(&popular(&app).await), vec![(b, 7), (a, 5)]);

    assert_eq!(cancel(&app, 3, big).await.status, StatusCode::OK);
    assert_eq!(app.deliver_events().await, 1);
    assert_eq!(ranking(&popular(&app).await), vec![(a, 5), (b, 3)]);

    // A redelivered cancellation is counted once.
    app.execute("UPDATE outbox SET delivered_at = NULL").await;
    assert_eq!(app.deliver_events().await, 4);
    assert_eq!(ranking(&popular(&app).await), vec![(a, 5), (b, 3)]);
}

async fn daily_figures_leave_cancelled_orders_out(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 1000, 100).await;
    let admin = app.admin();
    app.clock.set(at("2026-11-23T01:00:00Z")); // the 23rd in Seoul
    buy(&app, 1, a, 2).await;
    app.charge(2, 10_000).await;
    let late = placed(
        &app,
        2,
        json!({"items": [{"product_id": a, "quantity": 3}]}),
    )
    .await;
    let early = placed(
        &app,
        2,
        json!({"items": [{"product_id": a, "quantity": 4}]}),
    )
    .await;
    app.deliver_events().await;
    // Cancelled before the job ran: the job leaves it out.
    assert_eq!(cancel(&app, 2, early).await.status, StatusCode::OK);
    app.clock.set(at("2026-11-24T03:00:00Z"));
    let run = |app: &TestApp| {
        app.post("/api/v1/admin/jobs/daily-sales?date=2026-11-23")
            .token(&admin)
            .send()
    };
    assert_eq!(run(&app).await.body["quantity"], 5);
    let day = |app: &TestApp| {
        app.get("/api/v1/admin/stats/daily-sales?date=2026-11-23")
            .token(&admin)
            .send()
    };

    // Cancelled after the day was finalized: the platform corrects the day when it learns.
    assert_eq!(cancel(&app, 2, late).await.status, StatusCode::OK);
    app.deliver_events().await;
    assert_eq!(
        day(&app).await.body,
        json!({"date": "2026-11-23", "finalized": true,
               "items": [{"product_id": a, "quantity": 2, "amount": 2000}]})
    );
    assert_eq!(ranking(&popular(&app).await), vec![(a, 2)]);
    // Rerunning the day gives the same figures.
    assert_eq!(
        run(&app).await.body,
        json!({"date": "2026-11-23", "products": 1, "quantity": 2, "amount": 2000})
    );
    assert_eq!(day(&app).await.body["items"][0]["quantity"], 2);
}

async fn a_cancel_committed_before_a_crash_reaches_the_platform_after_restart(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 100, 100).await;
    app.charge(1, 10_000).await;
    let id = placed(
        &app,
        1,
        json!({"items": [{"product_id": a, "quantity": 2}]}),
    )
    .await;
    buy(&app, 2, a, 1).await;
    app.deliver_events().await;
    assert_eq!(cancel(&app, 1, id).await.status, StatusCode::OK);
    // The process dies after the commit, before the relay ran.
    let app = app.restart().await;
    assert_eq!(app.deliver_events().await, 1);
    assert_eq!(ranking(&popular(&app).await), vec![(a, 1)]);
}

/// Retries of one keyed cancellation that arrive together (so in one batch of the committer)
/// and retries of another order's cancellation with the same key: the key's first cancellation
/// is carried out once and every retry of it answers its bytes; the other order's hears 422.
async fn keyed_cancels_arriving_together_run_once_and_replay(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 10).await;
    app.charge(7, 10_000).await;
    let body = json!({"items": [{"product_id": mug, "quantity": 2}]});
    let first = placed(&app, 7, body.clone()).await;
    let second = placed(&app, 7, body).await;
    let token = app.token(7);
    let answers = concurrently((0..10).map(|_| {
        app.post(&format!("/api/v1/orders/{first}/cancel"))
            .token(&token)
            .header("Idempotency-Key", "cancel-together")
    }))
    .await;
    assert_eq!(count_status(&answers, StatusCode::OK), 10);
    assert!(answers.iter().all(|a| a.text == answers[0].text));
    app.post(&format!("/api/v1/orders/{second}/cancel"))
        .token(&token)
        .header("Idempotency-Key", "cancel-together")
        .send()
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(stock(&app, mug).await, 8);
    assert_eq!(app.balance(7).await, 8_000);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM balance_history WHERE kind = 'REFUND'")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'order.cancelled'")
            .await,
        1
    );
    assert_balances_match_history(app.raw()).await;
}

on_both_backends!(
    keyed_cancels_arriving_together_run_once_and_replay,
    a_cancel_restores_stock_coupon_and_balance,
    twenty_concurrent_cancels_refund_once,
    cancels_racing_new_orders_never_oversell,
    an_expired_coupon_stays_expired_and_a_live_one_is_usable_once_more,
    who_may_cancel_and_when,
    the_window_is_a_setting,
    a_refund_may_pass_the_maximum_balance,
    a_free_order_is_cancelled_without_a_refund_row,
    a_retried_cancel_with_its_key_replays_the_answer,
    popular_products_drop_cancelled_sales,
    daily_figures_leave_cancelled_orders_out,
    a_cancel_committed_before_a_crash_reaches_the_platform_after_restart,
);
