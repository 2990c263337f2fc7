//! The kit's invariants on the real schema of both backends (`migrations/`, applied as written),
//! on states that hold and states that break them: none of them can pass whatever the data.

use commerce_test_support::invariants::{self, Check};
use commerce_test_support::{postgres_admin_url, Database, Raw};

/// A fresh database of either backend with every migration applied, and a pool on it.
async fn migrated(postgres: bool) -> (Database, Raw, &'static str) {
    let (db, dir, now) = if postgres {
        let db = Database::postgres(&postgres_admin_url(), "kit_test").await;
        (
            db.expect("PostgreSQL at COMMERCE_TEST_POSTGRES_URL or 127.0.0.1:5432"),
            "postgres",
            "now()",
        )
    } else {
        let db = Database::sqlite("kit_test").unwrap();
        std::fs::File::create(db.url.trim_start_matches("sqlite://")).unwrap();
        (db, "sqlite", "0")
    };
    let raw = Raw::connect(&db.url).await;
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/");
    let mut files: Vec<_> = std::fs::read_dir(format!("{folder}{dir}"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        // Several statements a file: the simple protocol, as a migration tool sends them.
        let script = std::fs::read_to_string(&file).unwrap();
        let applied = match &raw {
            Raw::Sqlite(pool) => sqlx::raw_sql(&script).execute(pool).await.map(drop),
            Raw::Postgres(pool) => sqlx::raw_sql(&script).execute(pool).await.map(drop),
        };
        applied.unwrap_or_else(|error| panic!("{}: {error}", file.display()));
    }
    (db, raw, now)
}

fn broken(check: Check) -> String {
    assert!(!check.ok, "held, but should not: {}", check.what);
    check.what
}

/// A user charged 10,000 who paid 6,000 for an order and got it back on cancelling it.
async fn refunded_order(raw: &Raw, now: &str) {
    for sql in [
        format!("INSERT INTO products (id, name, price, stock, created_at, updated_at) VALUES (1, 'p', 3000, 5, {now}, {now})"),
        format!("INSERT INTO balances (user_id, balance, updated_at) VALUES (7, 10000, {now})"),
        format!("INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, created_at, cancelled_at) VALUES (1, 7, 'CANCELLED', 6000, 0, 6000, {now}, {now})"),
        "INSERT INTO order_items (order_id, product_id, name, unit_price, quantity, amount) VALUES (1, 1, 'p', 3000, 2, 6000)".into(),
        format!("INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at) VALUES (7, 'CHARGE', 10000, 10000, NULL, {now})"),
        format!("INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at) VALUES (7, 'PAYMENT', 6000, 4000, 1, {now})"),
        format!("INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at) VALUES (7, 'REFUND', 6000, 10000, 1, {now})"),
        format!("INSERT INTO outbox (topic, payload, created_at) VALUES ('order.paid', '{{}}', {now})"),
        format!("INSERT INTO outbox (topic, payload, created_at) VALUES ('order.cancelled', '{{}}', {now})"),
    ] {
        raw.execute(&sql).await;
    }
}

async fn a_refund_is_money_back_and_a_cancelled_order_holds_no_stock(postgres: bool) {
    let (_db, raw, now) = migrated(postgres).await;
    refunded_order(&raw, now).await;
    // A refund counted as a debit would make this balance 10,000 - 6,000 - 6,000.
    invariants::balances(&raw).await.unwrap().assert();
    invariants::stock(&raw, &[(1, 5)]).await.unwrap().assert();
    invariants::events(&raw).await.unwrap().assert();
    invariants::coupons(&raw).await.unwrap().assert();
    invariants::holdings(&raw).await.unwrap().assert();

    // The balance without its refund, stock not given back, the cancellation's event missing.
    raw.execute("UPDATE balances SET balance = 4000").await;
    assert!(broken(invariants::balances(&raw).await.unwrap()).contains("1 balances differ"));
    raw.execute("UPDATE products SET stock = 3").await;
    let stock = broken(invariants::stock(&raw, &[(1, 5)]).await.unwrap());
    assert!(stock.contains("product 1: stock 3 + 0 units"), "{stock}");
    raw.execute("DELETE FROM outbox WHERE topic = 'order.cancelled'")
        .await;
    broken(invariants::events(&raw).await.unwrap());
    // A paid order's units count as sold.
    raw.execute("UPDATE orders SET status = 'PAID', cancelled_at = NULL")
        .await;
    invariants::stock(&raw, &[(1, 5)]).await.unwrap().assert();
    raw.close().await;
}

async fn holdings_are_the_units_in_paid_orders(postgres: bool) {
    let (_db, raw, now) = migrated(postgres).await;
    refunded_order(&raw, now).await;
    raw.execute("UPDATE products SET max_per_user = 2").await;
    // Cancelled: nothing held, with or without a row.
    invariants::holdings(&raw).await.unwrap().assert();
    raw.execute("INSERT INTO purchase_holdings (product_id, user_id, quantity) VALUES (1, 7, 0)")
        .await;
    invariants::holdings(&raw).await.unwrap().assert();
    // Paid again: the row must count its 2 units.
    raw.execute("UPDATE orders SET status = 'PAID', cancelled_at = NULL")
        .await;
    assert!(broken(invariants::holdings(&raw).await.unwrap()).contains("1 differ"));
    raw.execute("UPDATE purchase_holdings SET quantity = 2")
        .await;
    invariants::holdings(&raw).await.unwrap().assert();
    // A buyer of a limited product without a row would be let past the limit.
    raw.execute("DELETE FROM purchase_holdings").await;
    assert!(broken(invariants::holdings(&raw).await.unwrap()).contains("1 missing"));
    raw.close().await;
}

#[tokio::test]
async fn sqlite_holdings_are_the_units_in_paid_orders() {
    holdings_are_the_units_in_paid_orders(false).await
}

#[tokio::test]
async fn postgres_holdings_are_the_units_in_paid_orders() {
    holdings_are_the_units_in_paid_orders(true).await
}

async fn coupons_issued_are_the_coupons_held(postgres: bool) {
    let (_db, raw, now) = migrated(postgres).await;
    raw.execute(&format!(
        "INSERT INTO coupons (id, name, discount_type, discount_value, min_order_amount, total_quantity, issued_quantity, valid_days, created_at)
         VALUES (1, 'c', 'FIXED', 500, 0, 2, 1, 7, {now})"
    ))
    .await;
    raw.execute(&format!(
        "INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at) VALUES (7, 1, {now}, {now})"
    ))
    .await;
    invariants::coupons(&raw).await.unwrap().assert();
    raw.execute("UPDATE coupons SET issued_quantity = 2").await;
    broken(invariants::coupons(&raw).await.unwrap());
    raw.close().await;
}

#[tokio::test]
async fn sqlite_a_refund_is_money_back_and_a_cancelled_order_holds_no_stock() {
    a_refund_is_money_back_and_a_cancelled_order_holds_no_stock(false).await
}

#[tokio::test]
async fn postgres_a_refund_is_money_back_and_a_cancelled_order_holds_no_stock() {
    a_refund_is_money_back_and_a_cancelled_order_holds_no_stock(true).await
}

#[tokio::test]
async fn sqlite_coupons_issued_are_the_coupons_held() {
    coupons_issued_are_the_coupons_held(false).await
}

#[tokio::test]
async fn postgres_coupons_issued_are_the_coupons_held() {
    coupons_issued_are_the_coupons_held(true).await
}

#[tokio::test]
async fn a_postgres_database_is_dropped_when_removed() {
    let admin = Raw::connect(&postgres_admin_url()).await;
    let db = Database::postgres(&postgres_admin_url(), "kit_test")
        .await
        .unwrap();
    let name = db.url.rsplit_once('/').unwrap().1.to_owned();
    let exists = format!("SELECT COUNT(*) FROM pg_database WHERE datname = '{name}'");
    assert_eq!(admin.scalar(&exists).await, 1);
    db.remove().await.unwrap();
    assert_eq!(admin.scalar(&exists).await, 0);
    admin.close().await;
}
