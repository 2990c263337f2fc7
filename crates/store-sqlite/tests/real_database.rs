//! The SQLite store on a real file: migrated, a committed write read back; another process's
//! connection holding the write lock delays writes while it is short and fails them as
//! transient (a retry may succeed) once it outlasts their deadline.

use commerce_store::{Batching, Fault, StoreError};
use std::time::Duration;

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
                conn.insert_product("Lamp", 1000, 5, chrono::Utc::now())
                    .await
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
