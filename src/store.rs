//! The database, chosen by its URL: the storage interface (`commerce-store`) on the backend
//! crate the URL names (`commerce-store-postgres`, `commerce-store-sqlite`).

pub use commerce_store::*;

/// `StoreFault` for errors whose `Db` variant carries the storage error (and no other does).
macro_rules! store_fault {
    ($($error:ident),* $(,)?) => {$(
        impl $crate::store::StoreFault for $error {
            fn store_error(&self) -> Option<&$crate::store::StoreError> {
                match self {
                    $error::Db(e) => Some(e),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    )*};
}
pub(crate) use store_fault;

/// Connects to `url` (`sqlite://PATH`, created if missing, or `postgres://...`).
pub async fn connect(url: &str, max_connections: u32) -> Result<Db, StoreError> {
    connect_batched(url, None, max_connections, Batching::default()).await
}

/// As [`connect`], with writes grouped into commits as `batching` says and, on PostgreSQL,
/// reads that may trail the primary served by the streaming replica at `replica_url`.
pub async fn connect_batched(
    url: &str,
    replica_url: Option<&str>,
    max_connections: u32,
    batching: Batching,
) -> Result<Db, StoreError> {
    match (Backend::from_url(url), replica_url.map(Backend::from_url)) {
        (Some(Backend::Postgres), None | Some(Some(Backend::Postgres))) => {
            commerce_store_postgres::connect(url, replica_url, max_connections, batching).await
        }
        (Some(Backend::Sqlite), None) => {
            commerce_store_sqlite::connect(url, max_connections, batching).await
        }
        (Some(_), Some(_)) => Err(StoreError::new(
            Fault::Bug,
            "a read replica needs PostgreSQL, for it and for the primary",
        )),
        (None, _) => Err(StoreError::new(
            Fault::Bug,
            "unsupported database URL: use sqlite://PATH or postgres://...",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn versions(backend: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let (sqlite, postgres) = (versions("sqlite"), versions("postgres"));
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite, postgres,
            "each migration exists for both backends, under one name"
        );
    }
}
