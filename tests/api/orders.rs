use crate::cancellation::cancel;
use crate::coupons::{create_coupon, fixed_coupon, issued};
use crate::harness::{concurrently, count_code, count_status, Backend, Response, TestApp};
use crate::invariants::{
    assert_balances_match_history, assert_coupons_issued_are_held, assert_one_event_per_order,
    assert_stock_adds_up,
};
use crate::on_both_backends;
use axum::http::StatusCode;
use serde_json::{json, Value};

async fn order(app: &TestApp, user: i64, body: Value) -> Response {
    app.post("/api/v1/orders")
        .token(&app.token(user))
        .json(body)
        .send()
        .await
}

async fn stock(app: &TestApp, product: i64) -> i64 {
    app.get(&format!("/api/v1/products/{product}"))
        .send()
        .await
        .body["stock"]
        .as_i64()
        .unwrap()
}

async fn coupon_status(app: &TestApp, user: i64) -> Value {
    app.get("/api/v1/me/coupons")
        .token(&app.token(user))
        .send()
        .await
        .body["items"][0]["status"]
        .clone()
}

async fn an_order_takes_stock_debits_the_balance_and_is_stored(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 9000, 10).await;
    let tea = app.product("Tea", 4500, 5).await;
    app.charge(7, 50_000).await;
    let placed = order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 2}, {"product_id": tea, "quantity": 1}]}),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let id = placed.body["id"].as_i64().unwrap();
    assert_eq!(
        placed.body,
        json!({"id": id, "user_id": 7, "status": "PAID",
               "items": [{"product_id": mug, "name": "Mug", "unit_price": 9000, "quantity": 2, "amount": 18000},
                         {"product_id": tea, "name": "Tea", "unit_price": 4500, "quantity": 1, "amount": 4500}],
               "total_amount": 22500, "discount_amount": 0, "paid_amount": 22500, "user_coupon_id": null,
               "created_at": "2026-11-24T03:00:00Z", "cancelled_at": null})
    );
    assert_eq!(stock(&app, mug).await, 8);
    assert_eq!(stock(&app, tea).await, 4);
    assert_eq!(app.balance(7).await, 27_500);
    let history = app
        .get("/api/v1/me/balance/history")
        .token(&app.token(7))
        .send()
        .await;
    assert_eq!(history.body["items"][0]["kind"], "PAYMENT");
    assert_eq!(history.body["items"][0]["amount"], 22500);
    assert_eq!(history.body["items"][0]["balance_after"], 27500);
    assert_eq!(history.body["items"][0]["order_id"], id);

    let read = app
        .get(&format!("/api/v1/orders/{id}"))
        .token(&app.token(7))
        .send()
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, placed.body);
    let mine = app
        .get("/api/v1/me/orders")
        .token(&app.token(7))
        .send()
        .await;
    assert_eq!(mine.body["items"], json!([placed.body]));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'order.paid'")
            .await,
        1
    );
}

async fn repeated_lines_are_merged(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 10).await;
    app.charge(7, 10_000).await;
    let placed = order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 2}, {"product_id": mug, "quantity": 3}]}),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    assert_eq!(placed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(placed.body["items"][0]["quantity"], 5);
    assert_eq!(stock(&app, mug).await, 5);
}

async fn invalid_orders_are_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 10).await;
    app.charge(7, 10_000).await;
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"product_id": mug, "quantity": 1}))
        .collect();
    for body in [
        json!({"items": []}),
        json!({"items": many}),
        json!({"items": [{"product_id": mug, "quantity": 0}]}),
        json!({"items": [{"product_id": mug, "quantity": 1001}]}),
        json!({"items": [{"product_id": mug, "quantity": -1}]}),
        json!({"items": [{"product_id": 0, "quantity": 1}]}),
    ] {
        order(&app, 7, body)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "INVALID_ORDER");
    }
    for body in [
        json!({}),
        json!({"items": [{"product_id": mug}]}),
        json!({"items": [{"product_id": mug, "quantity": "2"}]}),
        json!({"items": [{"product_id": mug, "quantity": 1.5}]}),
        json!({"items": [{"product_id": mug, "quantity": 1}], "coupon": 3}),
        json!({"items": "mug"}),
    ] {
        order(&app, 7, body)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    assert_eq!(stock(&app, mug).await, 10);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 0);
}

async fn a_missing_product_fails_the_whole_order(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 10).await;
    app.charge(7, 10_000).await;
    let response = order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}, {"product_id": 9999, "quantity": 1}]}),
    )
    .await;
    response.assert_problem(StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND");
    assert_eq!(stock(&app, mug).await, 10);
    assert_eq!(app.balance(7).await, 10_000);
}

async fn out_of_stock_names_the_product_and_changes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 10).await;
    let tea = app.product("Tea", 1000, 1).await;
    app.charge(7, 10_000).await;
    let response = order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 3}, {"product_id": tea, "quantity": 2}]}),
    )
    .await;
    response.assert_problem(StatusCode::CONFLICT, "OUT_OF_STOCK");
    assert!(response.body["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("product {tea}")));
    assert_eq!(stock(&app, mug).await, 10);
    assert_eq!(stock(&app, tea).await, 1);
    assert_eq!(app.balance(7).await, 10_000);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox").await, 0);
}

async fn a_fixed_coupon_takes_won_off_and_is_used(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 10_000, 10).await;
    app.charge(7, 50_000).await;
    let user_coupon = issued(&app, 7, fixed_coupon(&app, 3000, 10).await).await;
    let placed = order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 2}], "user_coupon_id": user_coupon}),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    assert_eq!(
        (
            placed.body["total_amount"].as_i64(),
            placed.body["discount_amount"].as_i64()
        ),
        (Some(20_000), Some(3000))
    );
    assert_eq!(placed.body["paid_amount"], 17_000);
    assert_eq!(placed.body["user_coupon_id"], user_coupon);
    assert_eq!(app.balance(7).await, 33_000);
    assert_eq!(coupon_status(&app, 7).await, "USED");
    let again = order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}], "user_coupon_id": user_coupon}),
    )
    .await;
    again.assert_problem(StatusCode::CONFLICT, "COUPON_NOT_USABLE");
}

async fn a_rate_coupon_rounds_down_and_never_exceeds_the_total(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pen = app.product("Pen", 999, 10).await;
    app.charge(7, 50_000).await;
    let rate = create_coupon(&app, json!({"name": "15%", "discount_type": "RATE", "discount_value": 15, "total_quantity": 5, "valid_days": 7})).await;
    let placed = order(&app, 7, json!({"items": [{"product_id": pen, "quantity": 1}], "user_coupon_id": issued(&app, 7, rate).await})).await;
    assert_eq!(
        (
            placed.body["discount_amount"].as_i64(),
            placed.body["paid_amount"].as_i64()
        ),
        (Some(149), Some(850))
    );
    let big = fixed_coupon(&app, 5000, 5).await;
    let placed = order(&app, 7, json!({"items": [{"product_id": pen, "quantity": 1}], "user_coupon_id": issued(&app, 7, big).await})).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    assert_eq!(
        (
            placed.body["discount_amount"].as_i64(),
            placed.body["paid_amount"].as_i64()
        ),
        (Some(999), Some(0))
    );
    assert_eq!(app.balance(7).await, 50_000 - 850);
}

async fn a_coupon_that_is_not_usable_fails_the_order(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 10_000, 10).await;
    app.charge(7, 100_000).await;
    let theirs = issued(&app, 8, fixed_coupon(&app, 1000, 10).await).await;
    let minimum = create_coupon(
        &app,
        json!({"name": "Big spender", "discount_type": "FIXED", "discount_value": 1000,
        "total_quantity": 10, "valid_days": 7, "min_order_amount": 30_000}),
    )
    .await;
    let mine = issued(&app, 7, minimum).await;
    let short = issued(&app, 7, create_coupon(&app, json!({"name": "1 day", "discount_type": "FIXED", "discount_value": 1000, "total_quantity": 10, "valid_days": 1})).await).await;
    for (coupon, why) in [
        (theirs, "another user's"),
        (mine, "under the minimum"),
        (424242, "nonexistent"),
    ] {
        let response = order(
            &app,
            7,
            json!({"items": [{"product_id": mug, "quantity": 2}], "user_coupon_id": coupon}),
        )
        .await;
        assert_eq!(
            response.body["code"], "COUPON_NOT_USABLE",
            "{why}: {}",
            response.text
        );
        response.assert_problem(StatusCode::CONFLICT, "COUPON_NOT_USABLE");
    }
    app.clock.advance(chrono::Duration::days(1));
    order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}], "user_coupon_id": short}),
    )
    .await
    .assert_problem(StatusCode::CONFLICT, "COUPON_NOT_USABLE");
    let at_minimum = order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 3}], "user_coupon_id": mine}),
    )
    .await;
    assert_eq!(
        at_minimum.status,
        StatusCode::CREATED,
        "{}",
        at_minimum.text
    );
    assert_eq!(stock(&app, mug).await, 7);
    assert_eq!(app.balance(7).await, 100_000 - 29_000);
}

async fn insufficient_balance_with_a_coupon_leaves_no_trace(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 10_000, 10).await;
    app.charge(7, 5000).await;
    let coupon = fixed_coupon(&app, 3000, 10).await;
    let user_coupon = issued(&app, 7, coupon).await;
    let response = order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}], "user_coupon_id": user_coupon}),
    )
    .await;
    response.assert_problem(StatusCode::CONFLICT, "INSUFFICIENT_BALANCE");
    assert_eq!(stock(&app, mug).await, 10);
    assert_eq!(coupon_status(&app, 7).await, "AVAILABLE");
    assert_eq!(app.balance(7).await, 5000);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM order_items").await, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM balance_history WHERE kind = 'PAYMENT'")
            .await,
        0
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox").await, 0);
    assert_eq!(
        app.metric("orders_failed_total{reason=\"INSUFFICIENT_BALANCE\"}")
            .await,
        1.0
    );
    // The coupon still works once the balance is there.
    app.charge(7, 2000).await;
    let placed = order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}], "user_coupon_id": user_coupon}),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED);
    assert_eq!(app.balance(7).await, 0);
}

async fn another_users_order_is_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 10).await;
    app.charge(7, 10_000).await;
    let id = order(
        &app,
        7,
        json!({"items": [{"product_id": mug, "quantity": 1}]}),
    )
    .await
    .body["id"]
        .as_i64()
        .unwrap();
    app.get(&format!("/api/v1/orders/{id}"))
        .token(&app.token(8))
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND");
    app.get("/api/v1/orders/999999")
        .token(&app.token(7))
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND");
    app.get("/api/v1/orders/abc")
        .token(&app.token(7))
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(
        app.get("/api/v1/me/orders")
            .token(&app.token(8))
            .send()
            .await
            .body["items"],
        json!([])
    );
}

async fn my_orders_page_newest_first(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 100, 100).await;
    app.charge(7, 10_000).await;
    let mut ids = Vec::new();
    for quantity in 1..=3 {
        ids.push(
            order(
                &app,
                7,
                json!({"items": [{"product_id": mug, "quantity": quantity}]}),
            )
            .await
            .body["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let first = app
        .get("/api/v1/me/orders?limit=2")
        .token(&app.token(7))
        .send()
        .await;
    let listed: Vec<i64> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[2], ids[1]]);
    assert_eq!(first.body["items"][0]["items"][0]["quantity"], 3);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/api/v1/me/orders?limit=2&cursor={cursor}"))
        .token(&app.token(7))
        .send()
        .await;
    assert_eq!(second.body["items"][0]["id"], ids[0]);
    assert_eq!(second.body["next_cursor"], Value::Null);
}

async fn an_order_retry_with_the_same_key_applies_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 100).await;
    app.charge(7, 100_000).await;
    let token = app.token(7);
    let body = json!({"items": [{"product_id": mug, "quantity": 2}]});
    let calls = (0..20).map(|_| {
        app.post("/api/v1/orders")
            .token(&token)
            .header("idempotency-key", "order-1")
            .json(body.clone())
    });
    let responses = concurrently(calls).await;
    for response in &responses {
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        assert_eq!(response.body, responses[0].body);
    }
    assert_eq!(stock(&app, mug).await, 98);
    assert_eq!(app.balance(7).await, 98_000);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 1);
    let other = app
        .post("/api/v1/orders")
        .token(&token)
        .header("idempotency-key", "order-1")
        .json(json!({"items": [{"product_id": mug, "quantity": 3}]}))
        .send()
        .await;
    other.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED");
}

async fn a_refused_order_is_replayed_not_retried(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 1000, 100).await;
    let send = || {
        app.post("/api/v1/orders")
            .token(&app.token(7))
            .header("idempotency-key", "k")
            .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
            .send()
    };
    let first = send().await;
    first.assert_problem(StatusCode::CONFLICT, "INSUFFICIENT_BALANCE");
    app.charge(7, 5000).await;
    let again = send().await;
    assert_eq!(
        (again.status, &again.body),
        (first.status, &first.body),
        "one key, one outcome"
    );
    assert_eq!(stock(&app, mug).await, 100);
}

async fn a_hundred_and_fifty_users_race_for_a_hundred_units(backend: Backend) {
    let app = TestApp::new(backend).await;
    let hot = app.product("Hot item", 1000, 100).await;
    for user in 1..=150 {
        app.charge(user, 5000).await;
    }
    let calls = (1..=150).map(|user| {
        app.post("/api/v1/orders")
            .token(&app.token(user))
            .json(json!({"items": [{"product_id": hot, "quantity": 1}]}))
    });
    let responses = concurrently(calls).await;
    let paid = count_status(&responses, StatusCode::CREATED);
    let out = count_code(&responses, "OUT_OF_STOCK");
    assert_eq!((paid, out), (100, 50));
    assert_eq!(stock(&app, hot).await, 0);
    assert_stock_adds_up(app.raw(), &[(hot, 100)]).await;
    assert_balances_match_history(app.raw()).await;
    for user in 1..=150 {
        let ordered = responses[(user - 1) as usize].status == StatusCode::CREATED;
        assert_eq!(app.balance(user).await, if ordered { 4000 } else { 5000 });
    }
}

async fn one_user_cannot_spend_more_than_the_balance(backend: Backend) {
    let app = TestApp::new(backend).await;
    let item = app.product("Item", 1000, 1000).await;
    app.charge(7, 10_000).await;
    let token = app.token(7);
    let calls = (0..40).map(|_| {
        app.post("/api/v1/orders")
            .token(&token)
            .json(json!({"items": [{"product_id": item, "quantity": 1}]}))
    });
    let responses = concurrently(calls).await;
    let paid = count_status(&responses, StatusCode::CREATED);
    let short = count_code(&responses, "INSUFFICIENT_BALANCE");
    assert_eq!((paid, short), (10, 30));
    assert_eq!(app.balance(7).await, 0);
    assert_eq!(stock(&app, item).await, 990);
    assert_stock_adds_up(app.raw(), &[(item, 1000)]).await;
    assert_balances_match_history(app.raw()).await;
}

/// A refund gives money back: the balance after a paid order is cancelled is what was charged,
/// and the invariant agrees with it (one that counted a refund as a debit would fail here).
async fn a_cancelled_order_leaves_the_balance_equal_to_its_history(backend: Backend) {
    let app = TestApp::new(backend).await;
    let product = app.product("refundable", 3_000, 5).await;
    app.charge(1, 10_000).await;
    let placed = order(
        &app,
        1,
        json!({"items": [{"product_id": product, "quantity": 2}]}),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    assert_eq!(app.balance(1).await, 4_000);
    assert_balances_match_history(app.raw()).await;
    let cancelled = cancel(&app, 1, placed.body["id"].as_i64().unwrap()).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(app.balance(1).await, 10_000);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM balance_history WHERE kind = 'REFUND'")
            .await,
        1
    );
    assert_balances_match_history(app.raw()).await;
    assert_stock_adds_up(app.raw(), &[(product, 5)]).await;
    assert_one_event_per_order(app.raw()).await;
    assert_coupons_issued_are_held(app.raw()).await;
}

async fn crossing_orders_never_deadlock(backend: Backend) {
    let app = TestApp::new(backend).await;
    let a = app.product("A", 100, 1000).await;
    let b = app.product("B", 100, 1000).await;
    for user in 1..=100 {
        app.charge(user, 1000).await;
    }
    let calls = (1..=100).map(|user| {
        let items = if user % 2 == 0 {
            json!([{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 1}])
        } else {
            json!([{"product_id": b, "quantity": 1}, {"product_id": a, "quantity": 1}])
        };

        app.post("/api/v1/orders")
            .token(&app.token(user))
            .json(json!({"items": items}))
    });
    for response in concurrently(calls).await {
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    }
    assert_eq!(stock(&app, a).await, 900);
    assert_eq!(stock(&app, b).await, 900);
}

on_both_backends!(
    an_order_takes_stock_debits_the_balance_and_is_stored,
    repeated_lines_are_merged,
    invalid_orders_are_refused,
    a_missing_product_fails_the_whole_order,
    out_of_stock_names_the_product_and_changes_nothing,
    a_fixed_coupon_takes_won_off_and_is_used,
    a_rate_coupon_rounds_down_and_never_exceeds_the_total,
    a_coupon_that_is_not_usable_fails_the_order,
    insufficient_balance_with_a_coupon_leaves_no_trace,
    another_users_order_is_not_found,
    my_orders_page_newest_first,
    an_order_retry_with_the_same_key_applies_once,
    a_refused_order_is_replayed_not_retried,
    a_hundred_and_fifty_users_race_for_a_hundred_units,
    one_user_cannot_spend_more_than_the_balance,
    a_cancelled_order_leaves_the_balance_equal_to_its_history,
    crossing_orders_never_deadlock,
);
