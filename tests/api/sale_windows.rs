//! Product sale windows: an order of a product outside its window is refused inside the batch,
//! against the order's clock, and leaves no trace; admins set, change and clear the window.

use crate::harness::{concurrently, count_code, count_status, Backend, Response, TestApp};
use crate::invariants::{assert_balances_match_history, assert_stock_adds_up};
use crate::on_both_backends;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use commerce::clock::Clock;
use serde_json::{json, Value};

fn at(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339()
}

/// An instant as the API shows it, or `None` for null.
fn instant(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str().map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .unwrap_or_else(|e| panic!("`{raw}` is not RFC 3339: {e}"))
            .to_utc()
    })
}

async fn order(app: &TestApp, user: i64, product: i64) -> Response {
    app.post("/api/v1/orders")
        .token(&app.token(user))
        .json(json!({"items": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await
}

async fn product(app: &TestApp, id: i64) -> Value {
    let read = app.get(&format!("/api/v1/products/{id}")).send().await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    read.body
}

/// What a refused order must have left as it was.
async fn assert_no_trace(app: &TestApp, id: i64, stock: i64, user: i64, balance: i64, orders: i64) {
    assert_eq!(product(app, id).await["stock"], stock);
    assert_eq!(app.balance(user).await, balance);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, orders);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM balance_history WHERE kind = 'PAYMENT'")
            .await,
        orders
    );
}

async fn a_product_is_ordered_only_inside_its_window(backend: Backend) {
    let app = TestApp::new(backend).await;
    let start = app.clock.now();
    let opens = start + Duration::seconds(2);
    let closes = start + Duration::seconds(10);
    let created = app
        .create_product(json!({"name": "Sneakers", "price": 1000, "stock": 10,
               "sale_starts_at": at(opens), "sale_ends_at": at(closes)}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    app.charge(7, 100_000).await;

    // Before the opening: refused, naming the product and the window, and nothing changes.
    let refused = order(&app, 7, id).await;
    refused.assert_problem(StatusCode::CONFLICT, "PRODUCT_NOT_ON_SALE");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("product {id}")), "{detail}");
    assert!(detail.contains(&opens.to_rfc3339()), "{detail}");
    assert!(detail.contains(&closes.to_rfc3339()), "{detail}");
    assert_no_trace(&app, id, 10, 7, 100_000, 0).await;
    app.clock.set(opens - Duration::microseconds(1));
    order(&app, 7, id)
        .await
        .assert_problem(StatusCode::CONFLICT, "PRODUCT_NOT_ON_SALE");
    assert_no_trace(&app, id, 10, 7, 100_000, 0).await;

    // From the opening instant on: it wins.
    app.clock.set(opens);
    let won = order(&app, 7, id).await;
    assert_eq!(won.status, StatusCode::CREATED, "{}", won.text);
    assert_eq!(instant(&won.body["created_at"]), Some(opens));
    app.clock.set(closes - Duration::microseconds(1));
    assert_eq!(order(&app, 7, id).await.status, StatusCode::CREATED);
    assert_no_trace(&app, id, 8, 7, 98_000, 2).await;

    // From the closing instant on: refused again.
    app.clock.set(closes);
    order(&app, 7, id)
        .await
        .assert_problem(StatusCode::CONFLICT, "PRODUCT_NOT_ON_SALE");
    assert_no_trace(&app, id, 8, 7, 98_000, 2).await;

    // Clearing the end reopens it; the start is left as it was.
    let reopened = app.patch_product(id, json!({"sale_ends_at": null})).await;
    assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.text);
    assert_eq!(instant(&reopened.body["sale_starts_at"]), Some(opens));
    assert_eq!(reopened.body["sale_ends_at"], Value::Null);
    assert_eq!(order(&app, 7, id).await.status, StatusCode::CREATED);
    assert_no_trace(&app, id, 7, 7, 97_000, 3).await;
    assert_balances_match_history(app.raw()).await;
    assert_stock_adds_up(app.raw(), &[(id, 10)]).await;
}

async fn one_closed_line_refuses_the_whole_order(backend: Backend) {
    let app = TestApp::new(backend).await;
    let open = app.product("Mug", 1000, 5).await;
    let later = app.clock.now() + Duration::hours(1);
    let closed = app
        .create_product(
            json!({"name": "Lamp", "price": 1000, "stock": 5, "sale_starts_at": at(later)}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    app.charge(7, 10_000).await;
    let refused = app
        .post("/api/v1/orders")
        .token(&app.token(7))
        .json(json!({"items": [
            {"product_id": open, "quantity": 1},
            {"product_id": closed, "quantity": 1},
        ]}))
        .send()
        .await;
    refused.assert_problem(StatusCode::CONFLICT, "PRODUCT_NOT_ON_SALE");
    assert_no_trace(&app, open, 5, 7, 10_000, 0).await;
    assert_eq!(product(&app, closed).await["stock"], 5);
    // A line is checked to be on sale before its stock.
    app.post("/api/v1/orders")
        .token(&app.token(7))
        .json(json!({"items": [{"product_id": closed, "quantity": 6}]}))
        .send()
        .await
        .assert_problem(StatusCode::CONFLICT, "PRODUCT_NOT_ON_SALE");
}

async fn the_window_is_validated_on_create_and_patch(backend: Backend) {
    let app = TestApp::new(backend).await;
    let now = app.clock.now();
    let (early, late) = (now + Duration::hours(1), now + Duration::hours(2));
    for (starts, ends) in [(early, early), (late, early)] {
        app.create_product(json!({"name": "Lamp", "price": 1000, "stock": 5,
                   "sale_starts_at": at(starts), "sale_ends_at": at(ends)}))
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    for bad in [json!("tomorrow"), json!("2026-11-24T09:00:00"), json!(5)] {
        app.create_product(
            json!({"name": "Lamp", "price": 1000, "stock": 5, "sale_starts_at": bad}),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM products").await, 0);

    // One side, or null, is fine; an offset other than Z is the same instant.
    let created = app
        .create_product(json!({"name": "Lamp", "price": 1000, "stock": 5,
               "sale_starts_at": "2026-11-24T13:00:00+09:00", "sale_ends_at": null}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(instant(&created.body["sale_starts_at"]), Some(early));
    assert_eq!(created.body["sale_ends_at"], Value::Null);

    // The window as the patch leaves it must start before it ends.
    for ends in [early, early - Duration::seconds(1)] {
        app.patch_product(id, json!({"sale_ends_at": at(ends)}))
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    app.patch_product(
        id,
        json!({"sale_starts_at": at(late), "sale_ends_at": at(late)}),
    )
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    app.patch_product(id, json!({"sale_starts_at": "soon"}))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(
        instant(&product(&app, id).await["sale_starts_at"]),
        Some(early)
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'product.update'")
            .await,
        0,
        "a refused patch leaves no audit entry"
    );

    // Absent leaves the window unchanged, a value sets it, null clears it.
    let renamed = app.patch_product(id, json!({"name": "Desk lamp"})).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(instant(&renamed.body["sale_starts_at"]), Some(early));
    assert_eq!(renamed.body["sale_ends_at"], Value::Null);
    let closing = app
        .patch_product(id, json!({"sale_ends_at": at(late)}))
        .await;
    assert_eq!(closing.status, StatusCode::OK, "{}", closing.text);
    assert_eq!(instant(&closing.body["sale_starts_at"]), Some(early));
    assert_eq!(instant(&closing.body["sale_ends_at"]), Some(late));
    // Moving the start past the old end is fine when the end moves too.
    let moved = app
        .patch_product(
            id,
            json!({"sale_starts_at": at(late), "sale_ends_at": at(late + Duration::hours(1))}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    let cleared = app.patch_product(id, json!({"sale_starts_at": null})).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.body["sale_starts_at"], Value::Null);
    assert_eq!(
        instant(&cleared.body["sale_ends_at"]),
        Some(late + Duration::hours(1))
    );
    let both = app
        .patch_product(id, json!({"sale_starts_at": null, "sale_ends_at": null}))
        .await;
    assert_eq!(both.status, StatusCode::OK, "{}", both.text);
    assert_eq!(both.body["sale_starts_at"], Value::Null);
    assert_eq!(both.body["sale_ends_at"], Value::Null);
    assert_eq!(both.body["name"], "Desk lamp");
    // The other fields still refuse null.
    app.patch_product(id, json!({"name": null}))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
}

async fn every_read_shows_the_window(backend: Backend) {
    let app = TestApp::new(backend).await;
    let plain = app.product("Mug", 1000, 5).await;
    let opens = app.clock.now() + Duration::minutes(5);
    let sale = app
        .create_product(
            json!({"name": "Lamp", "price": 1000, "stock": 5, "sale_starts_at": at(opens)}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let mug = product(&app, plain).await;
    assert_eq!(
        mug,
        json!({"id": plain, "name": "Mug", "price": 1000, "stock": 5,
               "sale_starts_at": null, "sale_ends_at": null,
               "max_per_user": null})
    );
    let lamp = product(&app, sale).await;
    assert_eq!(instant(&lamp["sale_starts_at"]), Some(opens));
    assert_eq!(lamp["sale_ends_at"], Value::Null);
    let listed = app.get("/api/v1/products").send().await;
    assert_eq!(listed.body["items"], json!([mug, lamp]));
    let audited = app
        .get("/api/v1/admin/audit")
        .token(&app.admin())
        .send()
        .await;
    assert_eq!(audited.status, StatusCode::OK, "{}", audited.text);
    assert_eq!(audited.body["items"][0]["after"], lamp);
    assert_eq!(audited.body["items"][1]["after"], mug);
}

async fn orders_across_the_opening_instant_are_decided_by_their_clock(backend: Backend) {
    const ORDERS: i64 = 200;
    // Enough for every order, and one more for the order after them.
    const STOCK: i64 = ORDERS + 1;
    let app = TestApp::new(backend).await;
    let opens = app.clock.now() + Duration::seconds(2);
    let hot = app
        .create_product(
            json!({"name": "Hot", "price": 1000, "stock": STOCK, "sale_starts_at": at(opens)}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    for user in 1..=ORDERS {
        app.charge(user, 5000).await;
    }
    app.clock.set(opens - Duration::milliseconds(100));
    // The clock crosses the opening while the orders are on their way.
    let clock = app.clock.clone();
    let ticking = tokio::spawn(async move {
        for _ in 0..200 {
            clock.advance(Duration::milliseconds(1));
            tokio::task::yield_now().await;
        }
    });
    let calls = (1..=ORDERS).map(|user| {
        app.post("/api/v1/orders")
            .token(&app.token(user))
            .json(json!({"items": [{"product_id": hot, "quantity": 1}]}))
    });
    let responses = concurrently(calls).await;
    ticking.await.expect("the clock task");

    let paid = count_status(&responses, StatusCode::CREATED);
    let refused = count_code(&responses, "PRODUCT_NOT_ON_SALE");
    assert_eq!(
        paid + refused,
        ORDERS as usize,
        "every answer is one or the other"
    );
    for response in &responses {
        if response.status == StatusCode::CREATED {
            let created = instant(&response.body["created_at"]).expect("created_at");
            assert!(created >= opens, "paid at {created}, before {opens}");
        } else {
            response.assert_problem(StatusCode::CONFLICT, "PRODUCT_NOT_ON_SALE");
        }
    }
    let stock = product(&app, hot).await["stock"].as_i64().unwrap();
    assert_eq!(stock + paid as i64, STOCK);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, paid as i64);
    assert_stock_adds_up(app.raw(), &[(hot, STOCK)]).await;
    assert_balances_match_history(app.raw()).await;
    // Past the opening, the rest win.
    app.clock.set(opens);
    assert_eq!(order(&app, 1, hot).await.status, StatusCode::CREATED);
}

on_both_backends!(
    a_product_is_ordered_only_inside_its_window,
    one_closed_line_refuses_the_whole_order,
    the_window_is_validated_on_create_and_patch,
    every_read_shows_the_window,
    orders_across_the_opening_instant_are_decided_by_their_clock,
);
