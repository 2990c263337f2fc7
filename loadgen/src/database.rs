//! A fresh database per backend, so every bench starts from the same empty state.

use anyhow::Context;
use rand::Rng;
use sqlx::{Connection, Executor, PgConnection};
use std::path::PathBuf;

use crate::cli::Backend;

pub struct Database {
    pub url: String,
    place: Place,
}

enum Place {
    SqliteDir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Database {
    /// An SQLite file in a new temporary directory, or a new database on the PostgreSQL server
    /// `postgres_url` points at.
    pub async fn create(backend: Backend, postgres_url: &str) -> anyhow::Result<Database> {
        let name = format!(
            "loadgen_{}_{}",
            chrono::Utc::now().format("%Y%m%d%H%M%S"),
            rand::rng().random_range(0..1_000_000)
        );
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir)?;
                Ok(Database {
                    url: format!("sqlite://{}/bench.db", dir.display()),
                    place: Place::SqliteDir(dir),
                })
            }
            Backend::Postgres => {
                let mut conn = PgConnection::connect(postgres_url).await.with_context(|| {
                    format!("connecting to {postgres_url} to create a database")
                })?;
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await?;
                let (server, _) = postgres_url
                    .rsplit_once('/')
                    .context("a database name at the end of --postgres-url")?;
                Ok(Database {
                    url: format!("{server}/{name}"),
                    place: Place::Postgres {
                        admin_url: postgres_url.to_owned(),
                        name,
                    },
                })
            }
        }
    }

    /// Removes the database; a failure only leaves garbage behind, so it is reported, not fatal.
    pub async fn remove(self) {
        let outcome = match &self.place {
            Place::SqliteDir(dir) => std::fs::remove_dir_all(dir).map_err(anyhow::Error::from),
            Place::Postgres { admin_url, name } => drop_database(admin_url, name).await,
        };
        if let Err(error) = outcome {
            eprintln!(
                "loadgen: could not remove the database {}: {error:#}",
                self.url
            );
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    Ok(())
}
