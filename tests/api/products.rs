use crate::harness::{Backend, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

async fn an_admin_creates_a_product_and_anyone_reads_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    let created = app
        .post("/api/v1/admin/products")
        .token(&app.admin())
        .json(json!({"name": "Earbuds", "price": 89000, "stock": 12}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(
        created.body,
        json!({"id": id, "name": "Earbuds", "price": 89000, "stock": 12,
               "sale_starts_at": null, "sale_ends_at": null,
               "max_per_user": null})
    );
    let read = app.get(&format!("/api/v1/products/{id}")).send().await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, created.body);
}

async fn a_missing_product_is_product_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.get("/api/v1/products/424242")
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND");
}

async fn bad_product_ids_are_validation_errors(backend: Backend) {
    let app = TestApp::new(backend).await;
    for path in ["abc", "0", "-3", "1.5", "99999999999999999999"] {
        app.get(&format!("/api/v1/products/{path}"))
            .send()
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
}

async fn products_are_listed_by_id_in_pages(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(app.product(&format!("p{n}"), 1000 * n, n).await);
    }
    let first = app.get("/api/v1/products?limit=3").send().await;
    let listed = |r: &crate::harness::Response| -> Vec<i64> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(listed(&first), ids[..3]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!("/api/v1/products?limit=3&cursor={cursor}"))
        .send()
        .await;
    assert_eq!(listed(&second), ids[3..]);
    assert_eq!(second.body["next_cursor"], json!(null));
    assert_eq!(listed(&app.get("/api/v1/products").send().await), ids);
}

async fn bad_paging_parameters_are_validation_errors(backend: Backend) {
    let app = TestApp::new(backend).await;
    assert_eq!(
        app.get("/api/v1/products?cursor=").send().await.status,
        StatusCode::OK
    );
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "cursor=%%%",
        "cursor=bm9wZQ",
    ] {
        app.get(&format!("/api/v1/products?{query}"))
            .send()
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    assert_eq!(
        app.get("/api/v1/products?limit=100").send().await.status,
        StatusCode::OK
    );
}

async fn product_fields_are_validated(backend: Backend) {
    let app = TestApp::new(backend).await;
    let bad = [
        json!({"name": "", "price": 100, "stock": 1}),
        json!({"name": "   ", "price": 100, "stock": 1}),
        json!({"name": "x", "price": 0, "stock": 1}),
        json!({"name": "x", "price": 100, "stock": -1}),
        json!({"name": "x", "price": 100}),
        json!({"name": "x", "price": 100, "stock": 1, "colour": "red"}),
        json!({"name": "x", "price": "100", "stock": 1}),
        json!({"name": "x".repeat(201), "price": 100, "stock": 1}),
    ];
    for body in bad {
        let response = app
            .post("/api/v1/admin/products")
            .token(&app.admin())
            .json(body.clone())
            .send()
            .await;
        response.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM products").await, 0);
}

async fn an_admin_patches_a_product(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = app.product("Mug", 9000, 3).await;
    let path = format!("/api/v1/admin/products/{id}");
    let patched = app
        .patch(&path)
        .token(&app.admin())
        .json(json!({"price": 8000, "stock": 50}))
        .send()
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(
        patched.body,
        json!({"id": id, "name": "Mug", "price": 8000, "stock": 50,
               "sale_starts_at": null, "sale_ends_at": null,
               "max_per_user": null})
    );
    let renamed = app
        .patch(&path)
        .token(&app.admin())
        .json(json!({"name": "Big mug"}))
        .send()
        .await;
    assert_eq!(renamed.body["name"], "Big mug");
    assert_eq!(renamed.body["price"], 8000);

    for body in [
        json!({"price": 0}),
        json!({"stock": -5}),
        json!({"name": ""}),
        json!({"sku": "x"}),
    ] {
        app.patch(&path)
            .token(&app.admin())
            .json(body)
            .send()
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    let unchanged = app
        .patch(&path)
        .token(&app.admin())
        .json(json!({}))
        .send()
        .await;
    assert_eq!(
        (unchanged.status, &unchanged.body),
        (StatusCode::OK, &renamed.body)
    );
    app.patch("/api/v1/admin/products/999999")
        .token(&app.admin())
        .json(json!({"price": 5}))
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND");
}

async fn only_admins_manage_products(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = json!({"name": "x", "price": 1, "stock": 1});
    app.post("/api/v1/admin/products")
        .token(&app.token(7))
        .json(body.clone())
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    app.post("/api/v1/admin/products")
        .json(body)
        .send()
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let id = app.product("x", 1, 1).await;
    app.patch(&format!("/api/v1/admin/products/{id}"))
        .token(&app.token(7))
        .json(json!({"price": 2}))
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
}

async fn product_detail_follows_this_instances_writes_at_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = app.product("Mug", 1000, 10).await;
    let read = || app.get(&format!("/api/v1/products/{id}")).send();
    assert_eq!(read().await.body["stock"], 10);
    app.charge(7, 10_000).await;
    let order = app
        .post("/api/v1/orders")
        .token(&app.token(7))
        .json(json!({"items": [{"product_id": id, "quantity": 3}]}))
        .send()
        .await;
    assert_eq!(order.status, StatusCode::CREATED);
    assert_eq!(read().await.body["stock"], 7);
    app.patch(&format!("/api/v1/admin/products/{id}"))
        .token(&app.admin())
        .json(json!({"price": 1500}))
        .send()
        .await;
    assert_eq!(read().await.body["price"], 1500);
}

async fn another_instances_change_shows_within_the_cache_ttl(backend: Backend) {
    const TTL: Duration = Duration::from_secs(1);
    let settings = commerce::config::Settings {
        product_cache_ttl: TTL,
        ..crate::harness::settings()
    };
    let app = TestApp::with_settings(backend, settings).await;
    let stock = |id: i64| {
        let app = &app;
        async move { app.get(&format!("/api/v1/products/{id}")).send().await.body["stock"].clone() }
    };
    // Another instance sells 4: this one serves its cached row until the entry expires. The
    // entry was cached after `started`, so a read less than a TTL after it must be stale; a
    // loaded machine may be slower than that, and then the round proves nothing and is played
    // again on another product.
    for _ in 0..5 {
        let id = app.product("Mug", 1000, 10).await;
        let started = Instant::now();
        assert_eq!(stock(id).await, 10);
        let cached_by = Instant::now();
        app.execute(&format!("UPDATE products SET stock = 6 WHERE id = {id}"))
            .await;
        let cached = stock(id).await;
        if started.elapsed() >= TTL {
            continue;
        }
        assert_eq!(cached, 10, "the cached row is served within the TTL");
        // The entry was cached before `cached_by`: it has expired a TTL after that (plus a
        // margin for the cache's own clock).
        tokio::time::sleep_until((cached_by + TTL + Duration::from_millis(50)).into()).await;
        assert_eq!(stock(id).await, 6, "the row is read again after the TTL");
        return;
    }
    panic!("no round was faster than the cache TTL of {TTL:?}");
}

on_both_backends!(
    an_admin_creates_a_product_and_anyone_reads_it,
    a_missing_product_is_product_not_found,
    bad_product_ids_are_validation_errors,
    products_are_listed_by_id_in_pages,
    bad_paging_parameters_are_validation_errors,
    product_fields_are_validated,
    an_admin_patches_a_product,
    only_admins_manage_products,
    product_detail_follows_this_instances_writes_at_once,
    another_instances_change_shows_within_the_cache_ttl,
);
