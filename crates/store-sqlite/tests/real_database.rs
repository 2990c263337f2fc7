//! The SQLite store on a real file: migrated, a committed write read back; another process's
//! connection holding the write lock delays writes while it is short and fails them as
//! transient (a retry may succeed) once it outlasts their deadline.

use commerce_store::product::NewProductRow;
use commerce_store::{Batching, Fault, StoreError};
use std::time::Duration;

#[path = "../../store/tests/common/holdings_store.rs"]
mod holdings_store;
#[path = "../../store/tests/common/webhook_store.rs"]
mod webhook_store;

async fn set_stock(
    db: &commerce_store::Db,
    id: commerce_domain::ids::ProductId,
    stock: i64,
) -> Result<(), StoreError> {
    db.write(move |conn| Box::pin(async move { conn.set_stocks(&[(id, stock)]).await }))
        .await
}

async fn stock(db: &commerce_store::Db, id: commerce_domain::ids::ProductId) -> Option<i64> {
    let product = db.read().await.unwrap().product(id).await.unwrap();
    product.map(|p| p.stock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_file_commits_and_waits_out_a_short_lock_but_not_a_long_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let batching = Batching {
        deadline: Duration::from_secs(1),
        ..Batching::default()
    };
    let db = commerce_store_sqlite::connect(&format!("sqlite://{}", path.display()), 4, batching)
        .await
        .expect("opens");
    db.migrate().await.expect("migrates");
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
    assert_eq!(stock(&db, id).await, Some(5));

    // A short hold: the write waits for it and lands.
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        holder.execute_batch("COMMIT").unwrap();
        holder
    });
    set_stock(&db, id, 7)
        .await
        .expect("lands once the lock is free");
    let holder = release.join().unwrap();
    assert_eq!(stock(&db, id).await, Some(7));

    // A hold past the write's deadline: refused as transient, and nothing was stored.
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let refused = set_stock(&db, id, 9)
        .await
        .expect_err("the lock outlasts the deadline");
    assert_eq!(refused.fault(), Fault::Transient, "{refused}");
    holder.execute_batch("COMMIT").unwrap();
    assert_eq!(stock(&db, id).await, Some(7));
    db.close().await;
}

/// A new file gets small pages (a commit writes every page it touched to the WAL whole); a
/// database created with the default pages keeps them and upgrades as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_gets_small_pages_and_an_old_one_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let page_size = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    let migrated = |path: std::path::PathBuf| async move {
        let url = format!("sqlite://{}", path.display());
        let db = commerce_store_sqlite::connect(&url, 2, Batching::default())
            .await
            .expect("opens");
        db.migrate().await.expect("migrates");
        db.close().await;
        path
    };

    let new = migrated(dir.path().join("new.db")).await;
    assert_eq!(page_size(&new), 512);

    let old = dir.path().join("old.db");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE kept (a INTEGER)")
        .unwrap();
    let old = migrated(old).await;
    assert_eq!(page_size(&old), 4096);
}

/// Audit entries go in within a write and come back newest first, their JSON values and
/// instants (to the microsecond) as written.
#[tokio::test]
async fn audit_entries_round_trip_newest_first() {
    use commerce_domain::page::PageRequest;
    use commerce_store::audit::NewAuditRow;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let db = commerce_store_sqlite::connect(&url, 4, Batching::default())
        .await
        .expect("opens");
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
}

/// Purchase holdings: set (inserted, then replaced), read back per pair (a pair without a row
/// is left out), given back by a cancelled order's lines, counted from the paid orders when a
/// limit is set and deleted when it is cleared.
#[tokio::test]
async fn purchase_holdings_are_set_released_counted_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("holdings.db").display());
    let db = commerce_store_sqlite::connect(&url, 4, Batching::default())
        .await
        .expect("opens");
    db.migrate().await.expect("migrates");
    holdings_store::purchase_holdings_are_set_released_counted_and_dropped(&db).await;
    db.close().await;
}

#[tokio::test]
async fn webhooks_fan_out_claim_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("webhooks.db").display());
    let db = commerce_store_sqlite::connect(&url, 4, Batching::default())
        .await
        .expect("opens");
    db.migrate().await.expect("migrates");
    webhook_store::webhooks_fan_out_claim_and_record(&db).await;
    db.close().await;
}
