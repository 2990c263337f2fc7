use crate::harness::{fresh_database, Backend, Raw, TestApp, TestDb};
use crate::on_both_backends;
use axum::http::StatusCode;
use std::path::Path;

/// A database with an order placed before the cancellation schema (migration 5) existed.
async fn database_before_cancellation(backend: Backend) -> (TestDb, i64, i64) {
    let db = fresh_database(backend).await;
    let folder = match backend {
        Backend::Sqlite => {
            let path = db.url.strip_prefix("sqlite://").expect("an SQLite URL");
            std::fs::File::create(path).expect("the database file");
            "sqlite"
        }
        Backend::Postgres => "postgres",
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let mut before = sqlx::migrate::Migrator::new(dir).await.expect("migrations");
    let older: Vec<_> = before
        .migrations
        .iter()
        .filter(|m| m.version < 5)
        .cloned()
        .collect();
    before.migrations = older.into();
    let raw = Raw::connect(&db.url).await;
    let at = match &raw {
        Raw::Sqlite(pool) => {
            before.run(pool).await.expect("migrations 1 to 4");
            "1795489200000000"
        }
        Raw::Postgres(pool) => {
            before.run(pool).await.expect("migrations 1 to 4");
            "'2026-11-24T03:00:00Z'"
        }
    };
    let product = raw
        .scalar(&format!(
            "INSERT INTO products (name, price, stock, created_at, updated_at)
             VALUES ('Mug', 1000, 5, {at}, {at}) RETURNING id"
        ))
        .await;
    let order = raw
        .scalar(&format!(
            "INSERT INTO orders (user_id, status, total_amount, discount_amount, paid_amount, created_at)
             VALUES (7, 'PAID', 2000, 0, 2000, {at}) RETURNING id"
        ))
        .await;
    raw.execute(&format!(
        "INSERT INTO order_items (order_id, product_id, name, unit_price, quantity, amount)
         VALUES ({order}, {product}, 'Mug', 1000, 2, 2000)"
    ))
    .await;
    raw.execute(&format!(
        "INSERT INTO balances (user_id, balance, updated_at) VALUES (7, 3000, {at})"
    ))
    .await;
    raw.execute(&format!(
        "INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at)
         VALUES (7, 'CHARGE', 5000, 5000, NULL, {at}), (7, 'PAYMENT', 2000, 3000, {order}, {at})"
    ))
    .await;
    raw.close().await;
    (db, product, order)
}

async fn the_cancellation_schema_keeps_earlier_orders_and_can_cancel_them(backend: Backend) {
    let (db, product, order) = database_before_cancellation(backend).await;
    let app = TestApp::at_url(backend, &db.url).await;
    let token = app.token(7);
    let read = app
        .get(&format!("/api/v1/orders/{order}"))
        .token(&token)
        .send()
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["status"], "PAID");
    assert_eq!(read.body["cancelled_at"], serde_json::Value::Null);
    assert_eq!(read.body["items"][0]["quantity"], 2);

    let cancelled = app
        .post(&format!("/api/v1/orders/{order}/cancel"))
        .token(&token)
        .send()
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(app.balance(7).await, 5000);
    assert_eq!(
        app.scalar(&format!("SELECT stock FROM products WHERE id = {product}"))
            .await,
        7
    );
    // New orders get new ids, and every line still belongs to an order.
    let again = app
        .post("/api/v1/orders")
        .token(&token)
        .json(serde_json::json!({"items": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert!(again.body["id"].as_i64().unwrap() > order);
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM order_items i WHERE NOT EXISTS
                 (SELECT 1 FROM orders o WHERE o.id = i.order_id)"
        )
        .await,
        0
    );
    if backend == Backend::Sqlite {
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM pragma_foreign_key_check")
                .await,
            0
        );
    }
}

on_both_backends!(the_cancellation_schema_keeps_earlier_orders_and_can_cancel_them);
