use crate::harness::{Backend, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;

async fn liveness_and_readiness_answer(backend: Backend) {
    let app = TestApp::new(backend).await;
    assert_eq!(app.get("/health/live").send().await.status, StatusCode::OK);
    let ready = app.get("/health/ready").send().await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["status"], "ok");
}

async fn readiness_fails_when_the_database_is_gone(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.state.db.close().await;
    let ready = app.get("/health/ready").send().await;
    ready.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "INTERNAL");
}

async fn metrics_count_requests_by_route_and_status(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.get("/api/v1/products/777").send().await;
    let metrics = app.get("/metrics").send().await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.text;
    assert!(
        text.contains(
            "http_requests_total{method=\"GET\",route=\"/api/v1/products/{id}\",status=\"404\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("db_pool_connections"), "{text}");
    assert!(text.contains("outbox_backlog"), "{text}");
}

async fn the_openapi_document_and_docs_are_served(backend: Backend) {
    let app = TestApp::new(backend).await;
    let doc = app.get("/openapi.json").send().await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    // Every path of the contract (API.md), with its methods.
    for (path, methods) in [
        ("/api/v1/me/balance", &["get"][..]),
        ("/api/v1/me/balance/charges", &["post"]),
        ("/api/v1/me/balance/history", &["get"]),
        ("/api/v1/products/{id}", &["get"]),
        ("/api/v1/products", &["get"]),
        ("/api/v1/products/popular", &["get"]),
        ("/api/v1/coupons/{id}", &["get"]),
        ("/api/v1/coupons/{id}/issue", &["post"]),
        ("/api/v1/me/coupons", &["get"]),
        ("/api/v1/orders", &["post"]),
        ("/api/v1/orders/{id}", &["get"]),
        ("/api/v1/me/orders", &["get"]),
        ("/api/v1/admin/jobs/daily-sales", &["post"]),
        ("/api/v1/admin/stats/daily-sales", &["get"]),
        ("/api/v1/admin/products", &["post"]),
        ("/api/v1/admin/products/{id}", &["patch"]),
        ("/api/v1/admin/coupons", &["post"]),
    ] {
        for method in methods {
            assert!(
                doc.body["paths"][path][method].is_object(),
                "{method} {path} missing from /openapi.json"
            );
        }
    }
    let paths = doc.body["paths"].as_object().unwrap().len();
    assert_eq!(
        paths, 17,
        "/openapi.json documents exactly the contract's paths"
    );
    let docs = app.get("/docs/").send().await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(
        docs.text.contains("swagger"),
        "docs page: {}",
        &docs.text[..docs.text.len().min(200)]
    );
    let asset = app.get("/docs/swagger-ui-bundle.js").send().await;
    assert_eq!(
        asset.status,
        StatusCode::OK,
        "the UI must be served from the binary"
    );
}

async fn responses_carry_a_request_id(backend: Backend) {
    let app = TestApp::new(backend).await;
    let response = app.get("/health/live").send().await;
    assert!(response.headers.get("x-request-id").is_some());
    let echoed = app
        .get("/health/live")
        .header("x-request-id", "abc-123")
        .send()
        .await;
    assert_eq!(echoed.headers.get("x-request-id").unwrap(), "abc-123");
}

on_both_backends!(
    liveness_and_readiness_answer,
    readiness_fails_when_the_database_is_gone,
    metrics_count_requests_by_route_and_status,
    the_openapi_document_and_docs_are_served,
    responses_carry_a_request_id,
);
