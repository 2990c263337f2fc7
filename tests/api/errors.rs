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
    response.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
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
}

async fn unknown_routes_and_methods_are_problems(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.get("/api/v1/nothing-here")
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    app.call(axum::http::Method::DELETE, "/api/v1/me/balance")
        .token(&app.token(1))
        .send()
        .await
        .assert_problem(StatusCode::METHOD_NOT_ALLOWED, "VALIDATION_FAILED");
}

on_both_backends!(
    malformed_bodies_are_validation_errors_naming_the_problem,
    an_oversized_body_is_refused_with_a_problem,
    a_body_without_json_content_type_is_refused,
    unknown_routes_and_methods_are_problems,
);
