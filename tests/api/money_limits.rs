//! Money at the largest settings (maximum charge = maximum balance = 10^15 won): every answer
//! is one of the contract's codes, never a 500, on both backends, whatever the balance.

use crate::cancellation::cancel;
use crate::harness::{settings, Backend, Response, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;
use commerce::config::Settings;
use commerce::money::MAX_SETTING;
use serde_json::json;

const MAX: i64 = MAX_SETTING.get();
/// The most one order of one product can cost: 10^9 won × 1000 units.
const LARGEST_ORDER: i64 = 1_000_000_000_000;

async fn charge(app: &TestApp, user: i64, amount: i64) -> Response {
    app.post("/api/v1/me/balance/charges")
        .token(&app.token(user))
        .json(json!({"amount": amount}))
        .send()
        .await
}

async fn order(app: &TestApp, user: i64, product: i64) -> i64 {
    let response = app
        .post("/api/v1/orders")
        .token(&app.token(user))
        .json(json!({"items": [{"product_id": product, "quantity": 1000}]}))
        .send()
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.body["paid_amount"], LARGEST_ORDER);
    response.body["id"].as_i64().unwrap()
}

async fn at_the_largest_settings_every_answer_is_a_contract_code(backend: Backend) {
    let limits = Settings {
        max_charge: MAX_SETTING,
        max_balance: MAX_SETTING,
        ..settings()
    };
    let app = TestApp::with_settings(backend, limits).await;
    let product = app.product("Gold bar", 1_000_000_000, 10_000).await;

    // Charged to the maximum in one charge; one won more is past it.
    let full = charge(&app, 7, MAX).await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.text);
    assert_eq!(full.body["balance"], MAX);
    charge(&app, 7, 1)
        .await
        .assert_problem(StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED");
    charge(&app, 7, MAX + 1)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "INVALID_AMOUNT");

    // Pay, charge back to the maximum, cancel: the refund goes past the maximum, as allowed.
    let paid = order(&app, 7, product).await;
    assert_eq!(charge(&app, 7, LARGEST_ORDER).await.status, StatusCode::OK);
    let cancelled = cancel(&app, 7, paid).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "CANCELLED");
    assert_eq!(app.balance(7).await, MAX + LARGEST_ORDER);
    charge(&app, 7, MAX)
        .await
        .assert_problem(StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED");

    // A balance near what 64 bits hold (put there behind the API's back): a charge is refused
    // by the maximum, not by an overflow.
    app.execute(&format!(
        "UPDATE balances SET balance = {} WHERE user_id = 7",
        i64::MAX - 1
    ))
    .await;
    charge(&app, 7, MAX)
        .await
        .assert_problem(StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED");

    // A refund that would pass 64 bits is refused and changes nothing.
    let second = order(&app, 7, product).await;
    app.execute(&format!(
        "UPDATE balances SET balance = {} WHERE user_id = 7",
        i64::MAX
    ))
    .await;
    let stock = app
        .scalar(&format!("SELECT stock FROM products WHERE id = {product}"))
        .await;
    cancel(&app, 7, second)
        .await
        .assert_problem(StatusCode::CONFLICT, "ORDER_NOT_CANCELLABLE");
    assert_eq!(app.balance(7).await, i64::MAX);
    assert_eq!(
        app.scalar(&format!("SELECT stock FROM products WHERE id = {product}"))
            .await,
        stock
    );
    let still_paid = app
        .get(&format!("/api/v1/orders/{second}"))
        .token(&app.token(7))
        .send()
        .await;
    assert_eq!(still_paid.body["status"], "PAID");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM balance_history WHERE kind = 'REFUND'")
            .await,
        1
    );
}

on_both_backends!(at_the_largest_settings_every_answer_is_a_contract_code);
