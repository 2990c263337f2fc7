//! The database: backend selection, pools, migrations and transactions with bounded retry.
//!
//! One implementation of the business logic serves both backends through sqlx's `Any` driver
//! with portable SQL (`$1` placeholders, `RETURNING`, `ON CONFLICT`). SQLite allows one writer at
//! a time, so its writes go through a one-connection pool: writers queue fairly in the pool
//! instead of spinning on `SQLITE_BUSY`; reads use a separate pool and never block on WAL.

mod error;
mod retry;

pub use error::DbError;
pub use retry::Transient;

use futures::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(DbError::UnsupportedUrl)
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Db {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects to `url` (`sqlite://PATH`, created if missing, or `postgres://...`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let max_connections = max_connections.max(2);
        match backend {
            Backend::Sqlite => {
                let options = AnyConnectOptions::from_str(&sqlite_url(url))?;
                // The writer connects first so the WAL switch happens before readers open.
                let write = sqlite_pool(1).connect_with(options.clone()).await?;
                let read = sqlite_pool(max_connections).connect_with(options).await?;
                Ok(Db {
                    read,
                    write,
                    backend,
                })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?;
                Ok(Db {
                    read: pool.clone(),
                    write: pool,
                    backend,
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool for reads that need no transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.run(&self.write).await.map_err(DbError::Migrate)
    }

    /// A plain connection from the write pool, for work that manages its own statements
    /// (background jobs that need no single transaction).
    pub async fn writer(&self) -> Result<PoolConnection<Any>, DbError> {
        Ok(self.write.acquire().await?)
    }

    /// Runs `work` in one transaction on the write pool and commits it if `work` succeeds.
    /// Transient failures (SQLite busy, PostgreSQL serialization failure or deadlock, pool
    /// timeout) roll back and run `work` again, a bounded number of times with jittered backoff.
    pub async fn write<T, E, F>(&self, mut work: F) -> Result<T, E>
    where
        F: for<'c> FnMut(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>>,
        E: From<DbError> + Transient,
    {
        let mut tries = 1;
        loop {
            match self.attempt(&mut work).await {
                Err(error) if retry::again(&error, tries) => {
                    metrics::counter!("db_transaction_retries_total").increment(1);
                    tokio::time::sleep(retry::backoff(tries)).await;
                    tries += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn attempt<T, E, F>(&self, work: &mut F) -> Result<T, E>
    where
        F: for<'c> FnMut(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>>,
        E: From<DbError>,
    {
        let mut tx = self.write.begin().await.map_err(DbError::from)?;
        let value = work(&mut tx).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(value)
    }

    /// Pool usage, for the metrics endpoint: (pool name, open connections, idle connections).
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, usize)> {
        let stat = |name, pool: &AnyPool| (name, pool.size(), pool.num_idle());
        match self.backend {
            Backend::Sqlite => vec![stat("read", &self.read), stat("write", &self.write)],
            Backend::Postgres => vec![stat("main", &self.write)],
        }
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        self.read.acquire().await?.ping().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// Whether a connection talks to PostgreSQL: stores use it where PostgreSQL can do in one
/// round trip what SQLite does in several statements.
pub fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}

/// `sqlite://PATH` creates the file when missing unless the URL says otherwise.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

fn sqlite_pool(max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; synchronous=FULL makes every commit
                // durable against power loss, not only against a crash of this process.
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = FULL",
                    "PRAGMA busy_timeout = 5000",
                    "PRAGMA foreign_keys = ON",
                ] {
                    conn.execute(pragma).await?;
                }
                Ok(())
            })
        })
}
