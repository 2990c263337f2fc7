//! Write-ahead log bytes per stored write: what each order (or charge, or issue) costs the disk.
//! SQLite's count comes from the server's `db_wal_bytes_total`, PostgreSQL's from the WAL
//! position, read before and after a scenario.

use anyhow::Context;
use sqlx::{Connection, PgConnection};

use commerce::store::Backend;

/// Where a backend's WAL position is read.
pub enum WalMeter {
    /// The server's `db_wal_bytes_total` (SQLite).
    Server { metrics: String },
    /// PostgreSQL's WAL position.
    Postgres { url: String },
}

impl WalMeter {
    pub fn new(backend: Backend, server_base: &str, database_url: &str) -> WalMeter {
        match backend {
            Backend::Sqlite => WalMeter::server(server_base),
            Backend::Postgres => WalMeter::Postgres {
                url: database_url.to_owned(),
            },
        }
    }

    pub fn server(base: &str) -> WalMeter {
        WalMeter::Server {
            metrics: format!("{base}/metrics"),
        }
    }

    /// Bytes of WAL written so far (on PostgreSQL by the whole server: run nothing else).
    pub async fn position(&self) -> anyhow::Result<u64> {
        match self {
            WalMeter::Server { metrics } => {
                let text = reqwest::get(metrics).await?.text().await?;
                Ok(counter(&text, "db_wal_bytes_total").unwrap_or(0.0) as u64)
            }
            WalMeter::Postgres { url } => {
                let mut conn = PgConnection::connect(url).await?;
                let bytes: i64 =
                    sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
                        .fetch_one(&mut conn)
                        .await
                        .context("reading the WAL position")?;
                Ok(bytes as u64)
            }
        }
    }
}

/// A counter's value in Prometheus text.
fn counter(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_read_from_prometheus_text() {
        let text = "# HELP db_wal_bytes_total x\n# TYPE db_wal_bytes_total counter\n\
                    db_wal_bytes_total_other 9\ndb_wal_bytes_total 40960\n";
        assert_eq!(counter(text, "db_wal_bytes_total"), Some(40960.0));
        assert_eq!(counter(text, "missing"), None);
    }
}
