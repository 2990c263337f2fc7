//! A fresh database per test or bench run: a new SQLite file in a temporary directory, or a new
//! uniquely named PostgreSQL database, removed when dropped (or by [`Database::remove`]).

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};

/// The PostgreSQL server the tests create their databases on:
/// `COMMERCE_TEST_POSTGRES_URL`, or the local one.
pub fn postgres_admin_url() -> String {
    std::env::var("COMMERCE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// An empty database (the server or the test migrates it); see the module.
pub struct Database {
    pub url: String,
    place: Place,
}

enum Place {
    /// Deleted with the directory.
    Sqlite(tempfile::TempDir),
    /// Dropped with `DROP DATABASE ... WITH (FORCE)` through `admin_url`.
    Postgres { admin_url: String, name: String },
    /// Removed already, or never ours.
    Gone,
}

/// `{prefix}_` and 16 random hex digits: a name no other test or run takes.
fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::random::<u64>())
}

impl Database {
    /// A new SQLite file (not yet created) in a new temporary directory.
    pub fn sqlite(prefix: &str) -> anyhow::Result<Database> {
        let name = unique_name(prefix);
        let dir = tempfile::Builder::new()
            .prefix(&name)
            .tempdir()
            .context("a temporary directory for SQLite")?;
        Ok(Database {
            url: format!(
                "sqlite://{}",
                dir.path().join(format!("{name}.db")).display()
            ),
            place: Place::Sqlite(dir),
        })
    }

    /// A new database on the PostgreSQL server `admin_url` points at (a URL ending in a
    /// database name the user may run CREATE DATABASE from).
    pub async fn postgres(admin_url: &str, prefix: &str) -> anyhow::Result<Database> {
        let name = unique_name(prefix);
        let mut conn = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to {admin_url} to create a database"))?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        let _ = conn.close().await;
        let (server, _) = admin_url
            .rsplit_once('/')
            .context("a database name at the end of the PostgreSQL URL")?;
        Ok(Database {
            url: format!("{server}/{name}"),
            place: Place::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
        })
    }

    /// A database the caller prepared and removes itself: nothing is removed on drop.
    pub fn borrowed(url: &str) -> Database {
        Database {
            url: url.to_owned(),
            place: Place::Gone,
        }
    }

    /// Removes the database now, saying why it could not.
    pub async fn remove(mut self) -> anyhow::Result<()> {
        match std::mem::replace(&mut self.place, Place::Gone) {
            Place::Sqlite(dir) => dir.close().context("deleting the SQLite directory"),
            Place::Postgres { admin_url, name } => drop_database(&admin_url, &name).await,
            Place::Gone => Ok(()),
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    let _ = conn.close().await;
    Ok(())
}

impl Drop for Database {
    fn drop(&mut self) {
        let Place::Postgres { admin_url, name } = std::mem::replace(&mut self.place, Place::Gone)
        else {
            return; // a TempDir deletes itself
        };
        // Drop may run inside a runtime or outside any: the cleanup gets a thread and a runtime
        // of its own. A failure only leaves garbage behind.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let _ = runtime.block_on(drop_database(&admin_url, &name));
        })
        .join();
    }
}

/// A connection pool of the caller's own on a database of either backend, for raw SQL behind
/// the server's back.
#[derive(Clone)]
pub enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    pub async fn try_connect(url: &str) -> Result<Raw, sqlx::Error> {
        Ok(if url.starts_with("sqlite:") {
            Raw::Sqlite(sqlx::SqlitePool::connect(url).await?)
        } else {
            Raw::Postgres(sqlx::PgPool::connect(url).await?)
        })
    }

    pub async fn connect(url: &str) -> Raw {
        Raw::try_connect(url).await.expect("a raw pool")
    }

    /// One number from the database.
    pub async fn try_scalar(&self, sql: &str) -> Result<i64, sqlx::Error> {
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        self.try_scalar(sql).await.expect(sql)
    }

    pub async fn execute(&self, sql: &str) {
        match self {
            Raw::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
            Raw::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .expect(sql)
    }

    /// The PostgreSQL pool, for tests of that backend alone.
    pub fn postgres(&self) -> sqlx::PgPool {
        match self {
            Raw::Postgres(pool) => pool.clone(),
            Raw::Sqlite(_) => panic!("a PostgreSQL test on SQLite"),
        }
    }

    pub async fn close(&self) {
        match self {
            Raw::Sqlite(pool) => pool.close().await,
            Raw::Postgres(pool) => pool.close().await,
        }
    }
}
