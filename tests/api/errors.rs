use crate::harness::{Backend, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;

async fn malformed_bodies_are_validation_errors_naming_the_problem(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cases = [
        ("{", "malformed JSON"),
        (r#""just a string""#, "invalid type: string"),
        (r#"{"amount": 100, "extra": 1}"#, "unknown field `extra`"),
        (r#"{"amount": null}"#, "amount"),
        (r#"{"amount": true}"#, "amount"),
        ("", "malformed JSON"),
    ];
    for (body, mentions) in cases {
        let response = app
            .post("/api/v1/me/balance/charges")
            .token(&app.token(7))
            .raw(body)
            .send()
            .await;
        response.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        let detail = response.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(mentions),
            "{body:?}: detail {detail:?} should mention {mentions:?}"
        );
    }
}

async fn an_oversized_body_is_refused_with_a_problem(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = format!(
        r#"{{"name": "{}", "price": 1, "stock": 1}}"#,
        "x".repeat(70 * 1024)
    );
    let response = app
        .post("/api/v1/admin/products")
        .token(&app.admin())
        .raw(&body)
        .send()
        .await;
    response.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "VALIDATION_FAILED");
    assert!(response.body["detail"]
        .as_str()
        .unwrap()
        .contains("larger than"));
}

async fn a_body_without_json_content_type_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let response = app
        .post("/api/v1/me/balance/charges")
        .token(&app.token(7))
        .header("content-type", "text/plain")
        .send()
        .await;
    response.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "VALIDATION_FAILED");
    // No Content-Type at all is the same answer, even without a body.
    app.post("/api/v1/orders")
        .token(&app.token(7))
        .send()
        .await
        .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "VALIDATION_FAILED");
}

async fn unknown_routes_and_methods_are_problems(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.get("/api/v1/nothing-here")
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    let wrong_method = app
        .call(axum::http::Method::DELETE, "/api/v1/me/balance")
        .token(&app.token(1))
        .send()
        .await;
    wrong_method.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    assert_eq!(wrong_method.headers["allow"], "GET,HEAD");
    let on_a_post_route = app.get("/api/v1/orders").send().await;
    on_a_post_route.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    assert_eq!(on_a_post_route.headers["allow"], "POST");
}

async fn integral_floats_are_integers_and_other_floats_are_not(backend: Backend) {
    let app = TestApp::new(backend).await;
    let charged = app
        .post("/api/v1/me/balance/charges")
        .token(&app.token(7))
        .raw(r#"{"amount": 15.0}"#)
        .send()
        .await;
    assert_eq!(charged.status, StatusCode::OK, "{}", charged.text);
    assert_eq!(charged.body["charged"], 15);
    let created = app
        .post("/api/v1/admin/products")
        .token(&app.admin())
        .raw(r#"{"name": "x", "price": 1e3, "stock": 2.0}"#)
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        (
            created.body["price"].as_i64(),
            created.body["stock"].as_i64()
        ),
        (Some(1000), Some(2))
    );
    for body in [
        r#"{"amount": 15.5}"#,
        r#"{"amount": 1e30}"#,
        r#"{"amount": "15"}"#,
    ] {
        let response = app
            .post("/api/v1/me/balance/charges")
            .token(&app.token(7))
            .raw(body)
            .send()
            .await;
        response.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        assert!(
            response.body["detail"].as_str().unwrap().contains("amount"),
            "{}",
            response.text
        );
    }
}

/// Names: at most 200 characters, no control characters, not blank; the same answer on both
/// backends (PostgreSQL refuses a NUL byte in text by itself), before any database call.
async fn names_are_checked_the_same_on_both_backends(backend: Backend) {
    let app = TestApp::new(backend).await;
    let product = app.product("Lamp", 1000, 1).await;
    let too_long = "가".repeat(201);
    // JSON escapes: a NUL byte, a tab, DEL and a line feed.
    for name in [
        r"a\u0000b",
        r"tab\there",
        r"del\u007f",
        r"\n",
        "   ",
        "",
        too_long.as_str(),
    ] {
        let body = format!(r#"{{"name": "{name}", "price": 1, "stock": 1}}"#);
        app.post("/api/v1/admin/products")
            .token(&app.admin())
            .raw(&body)
            .send()
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        app.patch(&format!("/api/v1/admin/products/{product}"))
            .token(&app.admin())
            .raw(&format!(r#"{{"name": "{name}"}}"#))
            .send()
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        let coupon = format!(
            r#"{{"name": "{name}", "discount_type": "FIXED", "discount_value": 1, "total_quantity": 1, "valid_days": 1}}"#
        );
        app.post("/api/v1/admin/coupons")
            .token(&app.admin())
            .raw(&coupon)
            .send()
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    let longest = "가".repeat(200);
    let created = app
        .post("/api/v1/admin/products")
        .token(&app.admin())
        .json(serde_json::json!({"name": longest, "price": 1, "stock": 1}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
}

async fn an_idempotency_key_is_one_header_of_bounded_printable_ascii(backend: Backend) {
    let app = TestApp::new(backend).await;
    let charge = |key: &str| {
        app.post("/api/v1/me/balance/charges")
            .token(&app.token(7))
            .header("idempotency-key", key)
            .json(serde_json::json!({"amount": 1}))
    };
    assert_eq!(charge(&"k".repeat(255)).send().await.status, StatusCode::OK);
    charge(&"k".repeat(256))
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    charge("a")
        .header("idempotency-key", "b")
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
}

on_both_backends!(
    malformed_bodies_are_validation_errors_naming_the_problem,
    an_oversized_body_is_refused_with_a_problem,
    a_body_without_json_content_type_is_refused,
    unknown_routes_and_methods_are_problems,
    integral_floats_are_integers_and_other_floats_are_not,
    names_are_checked_the_same_on_both_backends,
    an_idempotency_key_is_one_header_of_bounded_printable_ascii,
);
