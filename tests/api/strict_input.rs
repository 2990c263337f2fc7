//! Input is read strictly, the same on both backends: a repeated key, an integer that is not
//! exactly one as written, a path id that is not a canonical decimal, a timestamp outside the
//! four-digit years in UTC and a day that is not exactly `YYYY-MM-DD` are all
//! `400 VALIDATION_FAILED` naming the field, never a 500.

use crate::harness::{Backend, Response, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;
use serde_json::{json, Value};

#[track_caller]
fn assert_refused(response: &Response, field: &str) {
    response.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    let detail = response.body["detail"].as_str().unwrap();
    assert!(detail.contains(field), "{detail:?} should name {field:?}");
}

async fn charge_raw(app: &TestApp, body: &str) -> Response {
    app.post("/api/v1/me/balance/charges")
        .token(&app.token(7))
        .raw(body)
        .send()
        .await
}

async fn a_repeated_key_is_refused_at_any_depth(backend: Backend) {
    let app = TestApp::new(backend).await;
    assert_refused(
        &charge_raw(&app, r#"{"amount": 1, "amount": 2}"#).await,
        "amount",
    );
    let product = app.product("Pen", 1000, 10).await;
    let nested = app
        .post("/api/v1/orders")
        .token(&app.token(7))
        .raw(&format!(
            r#"{{"items": [{{"product_id": {product}, "quantity": 1, "quantity": 2}}]}}"#
        ))
        .send()
        .await;
    assert_refused(&nested, "items[0]");
    assert_refused(&nested, "quantity");
    let patch = app
        .patch(&format!("/api/v1/admin/products/{product}"))
        .token(&app.admin())
        .raw(r#"{"price": 1, "price": 2}"#)
        .send()
        .await;
    assert_refused(&patch, "price");
    assert_eq!(app.balance(7).await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM balance_history").await, 0);
}

async fn an_integer_must_be_exactly_one_as_written(backend: Backend) {
    let app = TestApp::new(backend).await;
    for body in [
        r#"{"amount": 100.0000000000000001}"#,
        r#"{"amount": 15.5}"#,
        r#"{"amount": 1e-1}"#,
    ] {
        assert_refused(&charge_raw(&app, body).await, "amount");
    }
    let product = app.product("Pen", 1000, 10).await;
    let order = app
        .post("/api/v1/orders")
        .token(&app.token(7))
        .raw(&format!(
            r#"{{"items": [{{"product_id": {product}, "quantity": 1.0000000000000001}}]}}"#
        ))
        .send()
        .await;
    assert_refused(&order, "items[0].quantity");
    assert_eq!(app.balance(7).await, 0);
}

async fn integral_numbers_are_integers(backend: Backend) {
    let app = TestApp::new(backend).await;
    for (body, charged) in [
        (r#"{"amount": 15.0}"#, 15),
        (r#"{"amount": 1e3}"#, 1000),
        (r#"{"amount": 1500e-2}"#, 15),
    ] {
        let response = charge_raw(&app, body).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        assert_eq!(response.body["charged"], charged);
    }
    assert_eq!(app.balance(7).await, 1030);
}

async fn path_ids_must_be_canonical_decimals(backend: Backend) {
    let app = TestApp::new(backend).await;
    let product = app.product("Pen", 1000, 10).await;
    assert_eq!(product, 1);
    for path in [
        "/api/v1/products/+1",
        "/api/v1/products/01",
        "/api/v1/products/1.0",
        "/api/v1/coupons/%2B1",
        "/api/v1/coupons/007",
    ] {
        assert_refused(&app.get(path).token(&app.token(7)).send().await, "id");
    }
    let cancel = app
        .post("/api/v1/orders/01/cancel")
        .token(&app.token(7))
        .send()
        .await;
    assert_refused(&cancel, "id");
    let canonical = app.get("/api/v1/products/1").send().await;
    assert_eq!(canonical.status, StatusCode::OK, "{}", canonical.text);
    assert_eq!(canonical.body["id"], 1);
}

fn coupon(starts: Value, ends: Value) -> Value {
    json!({"name": "Welcome", "discount_type": "FIXED", "discount_value": 1000,
           "total_quantity": 10, "valid_days": 7,
           "issue_starts_at": starts, "issue_ends_at": ends})
}

async fn create_coupon(app: &TestApp, body: Value) -> Response {
    app.post("/api/v1/admin/coupons")
        .token(&app.admin())
        .json(body)
        .send()
        .await
}

async fn timestamps_have_a_four_digit_year_in_utc(backend: Backend) {
    let app = TestApp::new(backend).await;
    let year_zero = create_coupon(
        &app,
        coupon(json!("0000-01-01T00:00:00+23:59"), json!(null)),
    )
    .await;
    assert_refused(&year_zero, "issue_starts_at");
    let year_ten_thousand = create_coupon(
        &app,
        coupon(json!(null), json!("9999-12-31T23:59:59-23:59")),
    )
    .await;
    assert_refused(&year_ten_thousand, "issue_ends_at");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM coupons").await, 0);

    let widest = create_coupon(
        &app,
        coupon(json!("0001-01-01T00:00:00Z"), json!("9999-12-31T23:59:59Z")),
    )
    .await;
    assert_eq!(widest.status, StatusCode::CREATED, "{}", widest.text);
    assert_eq!(widest.body["issue_starts_at"], "0001-01-01T00:00:00Z");
    assert_eq!(widest.body["issue_ends_at"], "9999-12-31T23:59:59Z");
    let read = app
        .get(&format!("/api/v1/coupons/{}", widest.body["id"]))
        .send()
        .await;
    assert_eq!(read.body["issue_starts_at"], "0001-01-01T00:00:00Z");
    assert_eq!(read.body["issue_ends_at"], "9999-12-31T23:59:59Z");
}

async fn days_are_exactly_yyyy_mm_dd(backend: Backend) {
    let app = TestApp::new(backend).await;
    for date in [
        "-4714-11-23",
        "0000-01-01",
        "12026-11-23",
        "%2B2026-11-23",
        "2026-11-31",
        "2026-1-23",
    ] {
        let stats = app
            .get(&format!("/api/v1/admin/stats/daily-sales?date={date}"))
            .token(&app.admin())
            .send()
            .await;
        assert_refused(&stats, "date");
        let job = app
            .post(&format!("/api/v1/admin/jobs/daily-sales?date={date}"))
            .token(&app.admin())
            .send()
            .await;
        assert_refused(&job, "date");
    }
    for date in ["0001-01-01", "2026-11-23", "9999-12-31"] {
        let stats = app
            .get(&format!("/api/v1/admin/stats/daily-sales?date={date}"))
            .token(&app.admin())
            .send()
            .await;
        assert_eq!(stats.status, StatusCode::OK, "{date}: {}", stats.text);
        assert_eq!(stats.body["date"], date);
    }
    for date in ["0001-01-01", "2026-11-23"] {
        let job = app
            .post(&format!("/api/v1/admin/jobs/daily-sales?date={date}"))
            .token(&app.admin())
            .send()
            .await;
        assert_eq!(job.status, StatusCode::OK, "{date}: {}", job.text);
        assert_eq!(job.body["date"], date);
    }
}

/// serde reads a struct from an array of its fields too: `[]` would be an empty patch, `[5000]`
/// a charge. Every request body is a JSON object; anything else changes nothing.
async fn a_body_that_is_not_an_object_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let product = app.product("Pen", 1000, 10).await;
    for body in ["[]", "[1]", "5000", "\"x\"", "null"] {
        let patch = app
            .patch(&format!("/api/v1/admin/products/{product}"))
            .token(&app.admin())
            .raw(body)
            .send()
            .await;
        assert_refused(&patch, "object");
        assert_refused(&charge_raw(&app, body).await, "object");
    }
    assert_refused(&charge_raw(&app, "[5000]").await, "object");
    assert_eq!(app.balance(7).await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM balance_history").await, 0);
}

on_both_backends!(
    a_repeated_key_is_refused_at_any_depth,
    an_integer_must_be_exactly_one_as_written,
    integral_numbers_are_integers,
    path_ids_must_be_canonical_decimals,
    timestamps_have_a_four_digit_year_in_utc,
    days_are_exactly_yyyy_mm_dd,
    a_body_that_is_not_an_object_is_refused,
);
