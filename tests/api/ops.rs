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
    ready.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert!(ready.headers.contains_key("retry-after"));
}

async fn metrics_count_requests_by_route_and_status(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.get("/api/v1/products/777").send().await;
    let metrics = app.get("/metrics").send().await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.text;
    assert_eq!(
        app.metric(
            "http_requests_total{method=\"GET\",route=\"/api/v1/products/{id}\",status=\"404\"}"
        )
        .await,
        1.0,
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
        ("/api/v1/orders/{id}/cancel", &["post"]),
        ("/api/v1/admin/orders/{id}/cancel", &["post"]),
        ("/api/v1/admin/jobs/daily-sales", &["post"]),
        ("/api/v1/admin/stats/daily-sales", &["get"]),
        ("/api/v1/admin/products", &["post"]),
        ("/api/v1/admin/products/{id}", &["patch"]),
        ("/api/v1/admin/coupons", &["post"]),
        ("/api/v1/admin/audit", &["get"]),
        ("/api/v1/admin/webhooks", &["post", "get"]),
        ("/api/v1/admin/webhooks/{id}", &["delete"]),
        ("/api/v1/admin/webhooks/{id}/deliveries", &["get"]),
        ("/api/v1/admin/webhooks/deliveries/{id}/retry", &["post"]),
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
        paths, 25,
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

/// Every status an operation can give is listed, and every bound comes from the code's constants
/// (the served charge maximum from the running setting).
async fn the_openapi_document_lists_every_status_and_bound(backend: Backend) {
    let settings = commerce::config::Settings {
        max_charge: commerce::money::Won(777_000),
        ..crate::harness::settings()
    };
    let app = TestApp::with_settings(backend, settings).await;
    let doc = app.get("/openapi.json").send().await.body;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let listed = |status: &str| operation["responses"][status].is_object();
            let what = format!("{method} {path}");
            assert!(listed("503"), "{what}: 503");
            let authed = operation["security"].is_array();
            assert_eq!(listed("401"), authed, "{what}: 401");
            if authed {
                assert!(
                    operation["responses"]["401"]["headers"]["WWW-Authenticate"].is_object(),
                    "{what}: WWW-Authenticate"
                );
            }
            assert_eq!(listed("403"), path.contains("/admin/"), "{what}: 403");
            let has_body = operation["requestBody"].is_object();
            assert_eq!(listed("413") && listed("415"), has_body, "{what}: 413/415");
            if path.contains("{id}") {
                assert!(listed("404") && listed("400"), "{what}: 404 and 400");
                let id = &operation["parameters"][0];
                assert_eq!(
                    (id["name"].as_str(), id["required"].as_bool()),
                    (Some("id"), Some(true))
                );
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{what}: {status} is a problem document"
                    );
                }
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    let maximum =
        |schema: &serde_json::Value, field: &str| schema["properties"][field]["maximum"].as_i64();
    assert_eq!(maximum(&schemas["ChargeRequest"], "amount"), Some(777_000));
    assert_eq!(
        maximum(&schemas["NewProduct"], "price"),
        Some(commerce::product::MAX_PRICE)
    );
    assert_eq!(
        maximum(&schemas["NewProduct"], "stock"),
        Some(commerce::product::MAX_STOCK)
    );
    let name = &schemas["NewProduct"]["properties"]["name"];
    assert_eq!(
        name["maxLength"].as_u64(),
        Some(commerce::bounds::MAX_NAME_CHARS as u64)
    );
    assert_eq!(
        name["pattern"].as_str(),
        Some(commerce::bounds::name_pattern().as_str())
    );
    assert_eq!(
        maximum(&schemas["NewRateCoupon"], "discount_value"),
        Some(100)
    );
    let lines = &schemas["PlaceOrderBody"]["properties"]["items"];
    assert_eq!(
        lines["maxItems"].as_u64(),
        Some(commerce::order::MAX_LINES as u64)
    );
    assert_eq!(
        maximum(&schemas["NewOrderLine"], "quantity"),
        Some(commerce::order::MAX_QUANTITY)
    );
    let list = &doc["paths"]["/api/v1/products"]["get"]["parameters"];
    assert_eq!(
        list[0]["schema"]["maximum"].as_i64(),
        Some(commerce::page::MAX_LIMIT)
    );
    assert_eq!(
        list[1]["schema"]["pattern"].as_str(),
        Some(commerce::page::CURSOR_PATTERN)
    );
    let key = &doc["paths"]["/api/v1/orders"]["post"]["parameters"][0];
    assert_eq!(key["name"], "Idempotency-Key");
    assert_eq!(
        key["schema"]["maxLength"].as_u64(),
        Some(commerce::http::extract::IDEMPOTENCY_KEY_MAX_LEN as u64)
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
    the_openapi_document_lists_every_status_and_bound,
    responses_carry_a_request_id,
);
