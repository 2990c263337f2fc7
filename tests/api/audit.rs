//! The admin audit log: every admin write leaves one entry in its own transaction (a refused
//! one none), only admins read it, newest first in pages, and concurrent changes of one
//! product chain their before and after values.

use crate::coupons::fixed_coupon;
use crate::harness::{concurrently, Backend, Response, TestApp};
use crate::on_both_backends;
use crate::platform::buy;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use commerce::store::Batching;
use commerce_test_support::token::ADMIN;
use serde_json::{json, Value};

async fn audit_page(app: &TestApp, query: &str) -> Response {
    app.get(&format!("/api/v1/admin/audit{query}"))
        .token(&app.admin())
        .send()
        .await
}

/// Every entry, newest first, page by page.
async fn entries(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    let mut query = "?limit=100".to_owned();
    loop {
        let page = audit_page(app, &query).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        all.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=100&cursor={cursor}"),
            None => return all,
        }
    }
}

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().unwrap()
}

/// The entry's fields other than its id and time.
fn what(entry: &Value) -> (i64, &str, &str) {
    (
        entry["actor"].as_i64().unwrap(),
        entry["action"].as_str().unwrap(),
        entry["resource"].as_str().unwrap(),
    )
}

async fn each_admin_write_is_recorded_with_its_values(backend: Backend) {
    let app = TestApp::new(backend).await;
    let now = at("2026-11-23T03:00:00Z");
    app.clock.set(now);
    let mug = app.product("Mug", 9000, 10).await;
    let patched = app
        .patch(&format!("/api/v1/admin/products/{mug}"))
        .token(&app.admin())
        .json(json!({"price": 8000, "stock": 20}))
        .send()
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let coupon = fixed_coupon(&app, 1000, 5).await;
    let coupon_view = app
        .get(&format!("/api/v1/coupons/{coupon}"))
        .send()
        .await
        .body;
    let order = buy(&app, 7, mug, 2).await;
    let owners = buy(&app, 8, mug, 1).await;
    let paid = app
        .get(&format!("/api/v1/orders/{order}"))
        .token(&app.token(7))
        .send()
        .await
        .body;
    let cancelled = app
        .post(&format!("/api/v1/admin/orders/{order}/cancel"))
        .token(&app.admin())
        .send()
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    let by_owner = app
        .post(&format!("/api/v1/orders/{owners}/cancel"))
        .token(&app.token(8))
        .send()
        .await;
    assert_eq!(by_owner.status, StatusCode::OK, "{}", by_owner.text);
    app.clock.set(at("2026-11-24T03:00:00Z"));
    let ran = app
        .post("/api/v1/admin/jobs/daily-sales?date=2026-11-23")
        .token(&app.admin())
        .send()
        .await;
    assert_eq!(ran.status, StatusCode::OK, "{}", ran.text);

    let log = entries(&app).await;
    let whats: Vec<_> = log.iter().map(what).collect();
    assert_eq!(
        whats,
        vec![
            (ADMIN, "job.daily_sales", "daily_sales:2026-11-23"),
            (ADMIN, "order.cancel", &*format!("order:{order}")),
            (ADMIN, "coupon.create", &*format!("coupon:{coupon}")),
            (ADMIN, "product.update", &*format!("product:{mug}")),
            (ADMIN, "product.create", &*format!("product:{mug}")),
        ],
        "newest first; the owner's cancellation and the orders are no admin writes"
    );
    let (job, cancel, coupon_entry, update, create) = (&log[0], &log[1], &log[2], &log[3], &log[4]);
    assert_eq!(job["before"], Value::Null);
    assert_eq!(job["after"], ran.body);
    assert_eq!(cancel["before"], paid);
    assert_eq!(cancel["after"], cancelled.body);
    assert_eq!(cancel["after"]["status"], "CANCELLED");
    assert_eq!(coupon_entry["before"], Value::Null);
    assert_eq!(coupon_entry["after"], coupon_view);
    assert_eq!(
        update["before"],
        json!({"id": mug, "name": "Mug", "price": 9000, "stock": 10,
               "sale_starts_at": null, "sale_ends_at": null,
               "max_per_user": null})
    );
    assert_eq!(update["after"], patched.body);
    assert_eq!(create["before"], Value::Null);
    assert_eq!(create["after"], update["before"]);
    for entry in &log[1..] {
        assert_eq!(at(entry["at"].as_str().unwrap()), now, "{entry}");
    }
    assert_eq!(at(job["at"].as_str().unwrap()), at("2026-11-24T03:00:00Z"));
    let ids: Vec<i64> = log.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_log").await, 5);
}

async fn a_refused_admin_write_leaves_no_entry(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.clock.set(at("2026-11-23T03:00:00Z"));
    let mug = app.product("Mug", 9000, 10).await;
    let order = buy(&app, 7, mug, 1).await;
    let cancel = || {
        app.post(&format!("/api/v1/admin/orders/{order}/cancel"))
            .token(&app.admin())
            .send()
    };
    assert_eq!(cancel().await.status, StatusCode::OK);
    let before = entries(&app).await;
    assert_eq!(before.len(), 2, "{before:?}");

    cancel()
        .await
        .assert_problem(StatusCode::CONFLICT, "ORDER_NOT_CANCELLABLE");
    app.post("/api/v1/admin/orders/999999/cancel")
        .token(&app.admin())
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND");
    app.patch("/api/v1/admin/products/999999")
        .token(&app.admin())
        .json(json!({"stock": 5}))
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND");
    app.patch(&format!("/api/v1/admin/products/{mug}"))
        .token(&app.admin())
        .json(json!({"price": 0}))
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    app.post("/api/v1/admin/products")
        .token(&app.admin())
        .json(json!({"name": " ", "price": 1, "stock": 1}))
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    app.post("/api/v1/admin/jobs/daily-sales?date=2026-11-23")
        .token(&app.admin())
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");

    assert_eq!(entries(&app).await, before);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_log").await, 2);
}

async fn only_admins_read_the_audit_log(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.product("Mug", 9000, 10).await;
    app.get("/api/v1/admin/audit")
        .send()
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.get("/api/v1/admin/audit")
        .token(&app.token(7))
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    audit_page(&app, "?cursor=junk")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    audit_page(&app, "?limit=0")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(
        audit_page(&app, "").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn the_audit_log_pages_newest_first(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut products = Vec::new();
    for n in 0..5 {
        products.push(app.product(&format!("P{n}"), 1000, n).await);
    }
    let resources = |page: &Response| -> Vec<String> {
        page.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"].as_str().unwrap().to_owned())
            .collect()
    };
    let name = |i: usize| format!("product:{}", products[i]);
    let first = audit_page(&app, "?limit=2").await;
    assert_eq!(resources(&first), vec![name(4), name(3)]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = audit_page(&app, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(resources(&second), vec![name(2), name(1)]);
    let cursor = second.body["next_cursor"].as_str().unwrap();
    let last = audit_page(&app, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(resources(&last), vec![name(0)]);
    assert_eq!(last.body["next_cursor"], Value::Null);
    let all = audit_page(&app, "").await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 5);
    assert_eq!(all.body["next_cursor"], Value::Null);
}

async fn concurrent_patches_chain_their_before_and_after(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mug = app.product("Mug", 9000, 0).await;
    let patches = (1..=50).map(|stock| {
        app.patch(&format!("/api/v1/admin/products/{mug}"))
            .token(&app.admin())
            .json(json!({"stock": stock, "price": 9000 + stock}))
    });
    let answers = concurrently(patches).await;
    assert_patches_chain(&app, mug, &answers).await;
}

/// As above, the PATCHes split between two instances that each commit with two committers:
/// the transactions overlap, and the product's row lock still orders the changes.
async fn patches_from_overlapping_transactions_chain_too(backend: Backend) {
    let app = TestApp::new(backend).await;
    let batching = Batching {
        max_batch: 8,
        committers: 2,
        ..Batching::default()
    };
    let instances = [
        app.batching_instance(batching).await,
        app.batching_instance(batching).await,
    ];
    let mug = app.product("Mug", 9000, 0).await;
    let patches = (1..=50_i64).map(|stock| {
        app.patch_to(
            &instances[stock as usize % 2],
            &format!("/api/v1/admin/products/{mug}"),
        )
        .token(&app.admin())
        .json(json!({"stock": stock, "price": 9000 + stock}))
    });
    let answers = concurrently(patches).await;
    assert_patches_chain(&app, mug, &answers).await;
}

/// 50 PATCHes of `mug` (stock n, price 9000 + n for n in 1..=50) left 50 entries, each
/// change's `before` the `after` of the one committed before it, in id order.
async fn assert_patches_chain(app: &TestApp, mug: i64, answers: &[Response]) {
    assert!(
        answers.iter().all(|r| r.status == StatusCode::OK),
        "{:?}",
        answers.iter().find(|r| r.status != StatusCode::OK)
    );
    let mut log = entries(app).await;
    log.reverse(); // oldest first
    let resource = format!("product:{mug}");
    assert!(log.iter().all(|e| e["resource"] == resource.as_str()));
    assert_eq!(log[0]["action"], "product.create");
    let updates = &log[1..];
    assert_eq!(updates.len(), 50);
    assert!(updates.iter().all(|e| e["action"] == "product.update"));
    let mut previous = &log[0]["after"];
    for entry in updates {
        assert_eq!(&entry["before"], previous, "{entry}");
        let after = &entry["after"];
        assert_eq!(
            after["price"].as_i64().unwrap(),
            9000 + after["stock"].as_i64().unwrap(),
            "stock and price of one PATCH: {entry}"
        );
        previous = after;
    }
    let mut stocks: Vec<i64> = updates
        .iter()
        .map(|e| e["after"]["stock"].as_i64().unwrap())
        .collect();
    stocks.sort_unstable();
    assert_eq!(stocks, (1..=50).collect::<Vec<_>>());
    let stored = app.get(&format!("/api/v1/products/{mug}")).send().await;
    assert_eq!(&stored.body, previous, "the last entry is the product now");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_log").await, 51);
}

on_both_backends!(
    each_admin_write_is_recorded_with_its_values,
    a_refused_admin_write_leaves_no_entry,
    only_admins_read_the_audit_log,
    the_audit_log_pages_newest_first,
    concurrent_patches_chain_their_before_and_after,
    patches_from_overlapping_transactions_chain_too,
);

/// The entry as clients are generated from it: the actions an enum, the values required,
/// nullable and of one named object type.
#[test]
fn the_entry_is_documented() {
    let doc = serde_json::to_value(commerce::app::openapi(&crate::harness::settings())).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["AuditAction"]["enum"],
        json!([
            "product.create",
            "product.update",
            "coupon.create",
            "order.cancel",
            "job.daily_sales",
            "webhook.create",
            "webhook.delete"
        ])
    );
    let entry = &schemas["AuditEntry"];
    assert_eq!(
        entry["required"],
        json!(["id", "actor", "action", "resource", "before", "after", "at"])
    );
    // Nullable, and one named object type for both, so a generated client has no anonymous
    // copies of it.
    for value in ["before", "after"] {
        let variants = entry["properties"][value]["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{value} is one of a value or null"));
        assert!(variants.iter().any(|v| v["type"] == "null"), "{value}");
        assert!(
            variants
                .iter()
                .any(|v| v["$ref"] == "#/components/schemas/AuditValue"),
            "{value}"
        );
    }
    assert_eq!(schemas["AuditValue"]["type"], "object");
    let operation = &doc["paths"]["/api/v1/admin/audit"]["get"];
    assert_eq!(operation["tags"], json!(["admin"]));
    assert_eq!(
        operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Page_AuditEntry"
    );
    for status in ["400", "401", "403"] {
        assert!(operation["responses"][status].is_object(), "{status}");
    }
}
