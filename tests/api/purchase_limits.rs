//! Per-customer purchase limits: the units of a product one user holds in paid orders never
//! exceed its `max_per_user`, whatever arrives at once; a cancellation gives units back; a
//! limit set after sales counts them.

use crate::cancellation::cancel;
use crate::harness::{
    concurrently, count_code, count_status, fresh_database, Backend, Raw, Response, TestApp, SECRET,
};
use crate::invariants::{
    assert_balances_match_history, assert_holdings_are_paid_units, assert_stock_adds_up,
};
use crate::on_both_backends;
use axum::http::StatusCode;
use commerce_test_support::server::Server;
use commerce_test_support::{fixtures, token};
use serde_json::{json, Value};

/// A product of 1,000 won with plenty of stock and this limit; its id.
async fn limited(app: &TestApp, stock: i64, max_per_user: i64) -> i64 {
    let created = app
        .create_product(
            json!({"name": "Limited", "price": 1000, "stock": stock, "max_per_user": max_per_user}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["max_per_user"], max_per_user);
    created.body["id"].as_i64().unwrap()
}

async fn order(app: &TestApp, user: i64, product: i64, quantity: i64) -> Response {
    app.post("/api/v1/orders")
        .token(&app.token(user))
        .json(json!({"items": [{"product_id": product, "quantity": quantity}]}))
        .send()
        .await
}

async fn read(app: &TestApp, id: i64) -> Value {
    let read = app.get(&format!("/api/v1/products/{id}")).send().await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    read.body
}

/// Refused for the limit, the detail naming the product, the limit and what is left.
#[track_caller]
fn assert_over_limit(response: &Response, product: i64, limit: i64, left: i64) {
    response.assert_problem(StatusCode::CONFLICT, "PURCHASE_LIMIT_EXCEEDED");
    let detail = response.body["detail"].as_str().unwrap();
    let expected = format!("product {product}: at most {limit} per customer, {left} left");
    assert!(detail.contains(&expected), "{detail}");
}

async fn paid_orders(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM orders WHERE status = 'PAID'")
        .await
}

async fn one_user_rushing_gets_exactly_the_limit(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = limited(&app, 100, 2).await;
    app.charge(7, 100_000).await;
    let calls = (0..50).map(|_| {
        app.post("/api/v1/orders")
            .token(&app.token(7))
            .json(json!({"items": [{"product_id": id, "quantity": 1}]}))
    });
    let responses = concurrently(calls).await;
    assert_eq!(count_status(&responses, StatusCode::CREATED), 2);
    assert_eq!(count_code(&responses, "PURCHASE_LIMIT_EXCEEDED"), 48);
    for refused in responses.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_over_limit(refused, id, 2, 0);
    }
    assert_eq!(paid_orders(&app).await, 2);
    assert_eq!(read(&app, id).await["stock"], 98);
    assert_eq!(app.balance(7).await, 98_000);
    assert_stock_adds_up(app.raw(), &[(id, 100)]).await;
    assert_balances_match_history(app.raw()).await;
    assert_holdings_are_paid_units(app.raw()).await;
}

async fn a_cancellation_gives_its_units_back(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = limited(&app, 100, 2).await;
    let mug = app.product("Mug", 500, 10).await;
    app.charge(8, 100_000).await;

    // More than the allowance at once: refused, naming what is left, and no trace.
    assert_over_limit(&order(&app, 8, id, 3).await, id, 2, 2);
    assert_eq!(paid_orders(&app).await, 0);
    assert_eq!(app.balance(8).await, 100_000);

    let first = order(&app, 8, id, 1).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_over_limit(&order(&app, 8, id, 2).await, id, 2, 1);
    assert_eq!(order(&app, 8, id, 1).await.status, StatusCode::CREATED);
    assert_over_limit(&order(&app, 8, id, 1).await, id, 2, 0);

    // One line over the limit refuses the whole order: the mug is not sold either.
    let both = app
        .post("/api/v1/orders")
        .token(&app.token(8))
        .json(json!({"items": [{"product_id": mug, "quantity": 1},
                               {"product_id": id, "quantity": 1}]}))
        .send()
        .await;
    assert_over_limit(&both, id, 2, 0);
    assert_eq!(read(&app, mug).await["stock"], 10);
    assert_eq!(app.balance(8).await, 98_000);

    // Another customer has an allowance of their own.
    app.charge(9, 10_000).await;
    assert_eq!(order(&app, 9, id, 2).await.status, StatusCode::CREATED);

    let cancelled = cancel(&app, 8, first.body["id"].as_i64().unwrap()).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(order(&app, 8, id, 1).await.status, StatusCode::CREATED);
    assert_over_limit(&order(&app, 8, id, 1).await, id, 2, 0);

    assert_eq!(paid_orders(&app).await, 3);
    assert_stock_adds_up(app.raw(), &[(id, 100), (mug, 10)]).await;
    assert_balances_match_history(app.raw()).await;
    assert_holdings_are_paid_units(app.raw()).await;
}

async fn many_customers_each_get_their_allowance(backend: Backend) {
    const USERS: i64 = 30;
    let app = TestApp::new(backend).await;
    let id = limited(&app, 1000, 2).await;
    for user in 1..=USERS {
        app.charge(user, 10_000).await;
    }
    let calls = (1..=USERS).flat_map(|user| {
        let app = &app;
        (0..3).map(move |_| {
            app.post("/api/v1/orders")
                .token(&app.token(user))
                .json(json!({"items": [{"product_id": id, "quantity": 1}]}))
        })
    });
    let responses = concurrently(calls).await;
    assert_eq!(
        count_status(&responses, StatusCode::CREATED),
        2 * USERS as usize
    );
    assert_eq!(
        count_code(&responses, "PURCHASE_LIMIT_EXCEEDED"),
        USERS as usize
    );
    let with_two = app
        .scalar(
            "SELECT COUNT(*) FROM (SELECT user_id FROM orders WHERE status = 'PAID'
                 GROUP BY user_id HAVING COUNT(*) = 2) AS two",
        )
        .await;
    assert_eq!(with_two, USERS);
    for user in 1..=USERS {
        assert_eq!(app.balance(user).await, 8_000);
    }
    assert_stock_adds_up(app.raw(), &[(id, 1000)]).await;
    assert_balances_match_history(app.raw()).await;
    assert_holdings_are_paid_units(app.raw()).await;
}

async fn admins_set_change_and_clear_the_limit(backend: Backend) {
    let app = TestApp::new(backend).await;
    for bad in [json!(0), json!(1001), json!(2.5), json!("2"), json!(-1)] {
        let refused = app
            .create_product(json!({"name": "Lamp", "price": 1000, "stock": 5, "max_per_user": bad}))
            .await;
        refused.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        assert!(refused.text.contains("max_per_user"), "{}", refused.text);
    }
    let plain = app.product("Mug", 1000, 100).await;
    assert_eq!(read(&app, plain).await["max_per_user"], Value::Null);
    let id = limited(&app, 100, 3).await;
    assert_eq!(read(&app, id).await["max_per_user"], 3);
    let listed = app.get("/api/v1/products").send().await;
    assert_eq!(listed.body["items"][0]["max_per_user"], Value::Null);
    assert_eq!(listed.body["items"][1]["max_per_user"], 3);

    for bad in [json!(0), json!(1001), json!("x")] {
        let refused = app.patch_product(id, json!({ "max_per_user": bad })).await;
        refused.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        assert!(refused.text.contains("max_per_user"), "{}", refused.text);
    }
    // Absent: unchanged; a value: changed; null: cleared.
    let renamed = app.patch_product(id, json!({"name": "Lamp"})).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.body["max_per_user"], 3);
    let changed = app.patch_product(id, json!({"max_per_user": 1000})).await;
    assert_eq!(changed.body["max_per_user"], 1000);
    let cleared = app.patch_product(id, json!({"max_per_user": null})).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.body["max_per_user"], Value::Null);
    assert_eq!(read(&app, id).await["max_per_user"], Value::Null);
    let audited = app
        .get("/api/v1/admin/audit")
        .token(&app.admin())
        .send()
        .await;
    assert_eq!(audited.body["items"][0]["before"]["max_per_user"], 1000);
    assert_eq!(audited.body["items"][0]["after"], cleared.body);

    // Without a limit the user buys 4; a limit of 5 set then counts them.
    app.charge(7, 100_000).await;
    assert_eq!(order(&app, 7, plain, 3).await.status, StatusCode::CREATED);
    assert_eq!(order(&app, 7, plain, 1).await.status, StatusCode::CREATED);
    let set = app.patch_product(plain, json!({"max_per_user": 5})).await;
    assert_eq!(set.body["max_per_user"], 5);
    assert_holdings_are_paid_units(app.raw()).await;
    assert_over_limit(&order(&app, 7, plain, 2).await, plain, 5, 1);
    assert_eq!(order(&app, 7, plain, 1).await.status, StatusCode::CREATED);
    // Lowered under what the user holds: nothing left, nothing taken back.
    app.patch_product(plain, json!({"max_per_user": 2})).await;
    assert_over_limit(&order(&app, 7, plain, 1).await, plain, 2, 0);
    // Cleared: no limit, and no holdings kept; set again: counted afresh.
    app.patch_product(plain, json!({"max_per_user": null}))
        .await;
    let holdings = format!("SELECT COUNT(*) FROM purchase_holdings WHERE product_id = {plain}");
    assert_eq!(app.scalar(&holdings).await, 0);
    assert_eq!(order(&app, 7, plain, 2).await.status, StatusCode::CREATED);
    app.patch_product(plain, json!({"max_per_user": 8})).await;
    assert_over_limit(&order(&app, 7, plain, 2).await, plain, 8, 1);
    assert_holdings_are_paid_units(app.raw()).await;
    assert_stock_adds_up(app.raw(), &[(plain, 100), (id, 100)]).await;
}

on_both_backends!(
    one_user_rushing_gets_exactly_the_limit,
    a_cancellation_gives_its_units_back,
    many_customers_each_get_their_allowance,
    admins_set_change_and_clear_the_limit,
);

/// The rush of one user split across two server processes on one PostgreSQL database: their
/// batches commit independently, and the limit still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_instances_keep_one_limit() {
    if !crate::harness::postgres_available().await {
        return;
    }
    let db = fresh_database(Backend::Postgres).await;
    let bin = env!("CARGO_BIN_EXE_commerce").as_ref();
    let first = Server::start(bin, &db.url, SECRET).await.expect("first");
    let second = Server::start(bin, &db.url, SECRET).await.expect("second");
    let client = reqwest::Client::new();
    let (admin, user) = (token::admin(SECRET), token::user(SECRET, 7));
    let (status, product) = fixtures::post(
        &client,
        &format!("{}/api/v1/admin/products", first.base),
        &admin,
        &json!({"name": "Limited", "price": 1000, "stock": 100, "max_per_user": 2}),
    )
    .await
    .expect("create");
    assert_eq!(status, 201, "{product}");
    let id = product["id"].as_i64().unwrap();
    fixtures::charge(&client, &first.base, &user, 100_000)
        .await
        .expect("charge");

    let body = json!({"items": [{"product_id": id, "quantity": 1}]});
    let calls = (0..50).map(|i| {
        let base = if i % 2 == 0 {
            &first.base
        } else {
            &second.base
        };
        let (client, user, body) = (&client, &user, &body);
        async move {
            fixtures::post(client, &format!("{base}/api/v1/orders"), user, body)
                .await
                .expect("an answer")
        }
    });
    let answers = futures::future::join_all(calls).await;
    let paid = answers.iter().filter(|(status, _)| *status == 201).count();
    let refused = answers
        .iter()
        .filter(|(status, body)| *status == 409 && body["code"] == "PURCHASE_LIMIT_EXCEEDED")
        .count();
    assert_eq!((paid, refused), (2, 48), "{answers:?}");

    let raw = Raw::connect(&db.url).await;
    assert_eq!(
        raw.scalar("SELECT COUNT(*) FROM orders WHERE status = 'PAID'")
            .await,
        2
    );
    assert_stock_adds_up(&raw, &[(id, 100)]).await;
    assert_balances_match_history(&raw).await;
    assert_holdings_are_paid_units(&raw).await;
    raw.close().await;
}
