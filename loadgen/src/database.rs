//! A fresh database per backend (the kit's), so every bench starts from the same empty state.

use commerce_test_support::Database;

use commerce::store::Backend;

/// An SQLite file in a new temporary directory, or a new database on the PostgreSQL server
/// `postgres_url` points at.
pub async fn fresh(backend: Backend, postgres_url: &str) -> anyhow::Result<Database> {
    match backend {
        Backend::Sqlite => Database::sqlite("loadgen"),
        Backend::Postgres => Database::postgres(postgres_url, "loadgen").await,
    }
}

/// Removes a bench's database; a failure only leaves garbage behind, so it is reported, not
/// fatal.
pub async fn remove(database: Database) {
    let url = database.url.clone();
    if let Err(error) = database.remove().await {
        eprintln!("loadgen: could not remove the database {url}: {error:#}");
    }
}
