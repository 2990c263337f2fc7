//! The PostgreSQL store against a real server (`COMMERCE_TEST_POSTGRES_URL`, else the local
//! one): a fresh database, migrated; a committed write is read back; a row held by another
//! session is a `LockHeld` fault after the lock timeout, not a wait for that session.

use commerce_store::product::NewProductRow;
use commerce_store::{Batching, Fault, StoreError};
use sqlx::{Connection, Executor, PgConnection};
use std::time::{Duration, Instant};

#[path = "../../store/tests/common/holdings_store.rs"]
mod holdings_store;
#[path = "../../store/tests/common/webhook_store.rs"]
mod webhook_store;

fn admin_url() -> String {
    std::env::var("COMMERCE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own, dropped at the end.
struct Fresh {
    name: String,
    url: String,
}

impl Fresh {
    async fn create(tag: &str) -> Fresh {
        let name = format!("store_pg_{tag}_{}", std::process::id());
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("PostgreSQL");
        admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await
            .unwrap();
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let (server, _) = admin_url()
            .rsplit_once('/')
            .map(|(s, d)| (s.to_owned(), d.to_owned()))
            .unwrap();
        Fresh {
            url: format!("{server}/{name}"),
            name,
        }
    }

    async fn drop_it(self) {
        let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_real_database_commits_refuses_held_rows_and_classifies_conflicts() {
    let fresh = Fresh::create("commits").await;
    let db = commerce_store_postgres::connect(&fresh.url, None, 4, Batching::default())
        .await
        .expect("connects");
    db.migrate().await.expect("migrates");

    // A lone write commits and is read back.
    let product = db
        .write(|conn| {
            Box::pin(async move {
                let lamp = NewProductRow {
                    name: "Lamp",
                    price: 1000,
                    stock: 5,
                    sale_starts_at: None,
                    sale_ends_at: None,
                    max_per_user: None,
                };
                conn.insert_product(lamp, chrono::Utc::now()).await
            })
        })
        .await
        .map_err(|e: StoreError| e)
        .expect("stored");
    let id = product.id;
    let read = db.read().await.unwrap().product(id).await.unwrap();
    assert_eq!(read.map(|p| p.stock), Some(5));

    // Another session holds the product's row: the write gives up after the lock timeout
    // with LockHeld instead of waiting for the session (its retries stay within the write
    // deadline).
    let mut holder = PgConnection::connect(&fresh.url).await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder
        .execute(format!("SELECT * FROM products WHERE id = {} FOR UPDATE", id.get()).as_str())
        .await
        .unwrap();
    let started = Instant::now();
    let held = db
        .write(move |conn| Box::pin(async move { conn.set_stocks(&[(id, 9)]).await }))
        .await
        .expect_err("the row is held");
    assert_eq!(held.fault(), Fault::LockHeld, "{held}");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    holder.execute("ROLLBACK").await.unwrap();
    db.write(move |conn| Box::pin(async move { conn.set_stocks(&[(id, 9)]).await }))
        .await
        .map_err(|e: StoreError| e)
        .expect("free again");
    let read = db.read().await.unwrap().product(id).await.unwrap();
    assert_eq!(read.map(|p| p.stock), Some(9));

    db.close().await;
    fresh.drop_it().await;
}

/// Audit entries go in within a write and come back newest first, their JSON values and
/// instants (to the microsecond) as written.
#[tokio::test]
async fn audit_entries_round_trip_newest_first() {
    use commerce_domain::page::PageRequest;
    use commerce_store::audit::NewAuditRow;
    let fresh = Fresh::create("audit").await;
    let db = commerce_store_postgres::connect(&fresh.url, None, 4, Batching::default())
        .await
        .expect("connects");
    db.migrate().await.expect("migrates");
    let at = chrono::DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap();
    let after = serde_json::json!({"id": 3, "name": "Lämp \"x\"", "items": [{"q": 1}], "n": null});
    for n in 1..=3_i64 {
        let after = std::sync::Arc::new(after.clone());
        db.write(move |conn| {
            let after = after.clone();
            Box::pin(async move {
                let resource = format!("product:{n}");
                let entry = NewAuditRow {
                    actor: 7,
                    action: "product.update",
                    resource: &resource,
                    before: (n > 1).then_some(&*after),
                    after: Some(&*after),
                    at,
                };
                conn.insert_audit(&entry).await
            })
        })
        .await
        .map_err(|e: StoreError| e)
        .expect("stored");
    }
    let mut reader = db.read().await.unwrap();
    let first = PageRequest {
        limit: 2,
        after: None,
    };
    let page = reader.audit_page(first).await.unwrap();
    let resources: Vec<&str> = page.iter().map(|e| e.resource.as_str()).collect();
    assert_eq!(
        resources,
        ["product:3", "product:2", "product:1"],
        "one past the limit"
    );
    assert_eq!(page[0].actor, 7);
    assert_eq!(page[0].action, "product.update");
    assert_eq!(page[0].after.as_ref(), Some(&after));
    assert_eq!(page[0].before.as_ref(), Some(&after));
    assert_eq!(page[2].before, None);
    assert_eq!(page[0].at, at);
    let rest = PageRequest {
        limit: 2,
        after: Some(page[1].id),
    };
    let page = reader.audit_page(rest).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].resource, "product:1");
    drop(reader);
    db.close().await;
    fresh.drop_it().await;
}

/// Purchase holdings: set (inserted, then replaced), read back per pair (a pair without a row
/// is left out), given back by a cancelled order's lines, counted from the paid orders when a
/// limit is set and deleted when it is cleared.
#[tokio::test]
async fn purchase_holdings_are_set_released_counted_and_dropped() {
    let fresh = Fresh::create("holdings").await;
    let db = commerce_store_postgres::connect(&fresh.url, None, 4, Batching::default())
        .await
        .expect("connects");
    db.migrate().await.expect("migrates");
    holdings_store::purchase_holdings_are_set_released_counted_and_dropped(&db).await;
    db.close().await;
    fresh.drop_it().await;
}

#[tokio::test]
async fn webhooks_fan_out_claim_and_record() {
    let fresh = Fresh::create("webhooks").await;
    let db = commerce_store_postgres::connect(&fresh.url, None, 4, Batching::default())
        .await
        .expect("connects");
    db.migrate().await.expect("migrates");
    webhook_store::webhooks_fan_out_claim_and_record(&db).await;
    db.close().await;
    fresh.drop_it().await;
}
