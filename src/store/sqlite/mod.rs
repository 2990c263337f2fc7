//! The SQLite implementation of the storage interface, on sqlx's native driver.
//!
//! Instants are stored as microseconds since the epoch (SQLite has no timestamp type) and
//! shop days as `YYYY-MM-DD` text.

mod balance;
mod coupon;
mod idempotency;
mod order;
mod outbox;
mod platform;
mod product;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

use super::{Conn, Fault, Row, StoreError, WRITE_DEADLINE};

/// The read pool and the one-connection write pool.
pub(super) async fn pools(
    url: &str,
    max_connections: u32,
) -> Result<(SqlitePool, SqlitePool), StoreError> {
    let mut options = SqliteConnectOptions::from_str(url)?
        // WAL lets readers run beside the writer; synchronous=FULL makes every commit durable
        // against power loss, not only against a crash of this process.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    if !url.contains("mode=") {
        options = options.create_if_missing(true);
    }
    let pool = |max| {
        SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(WRITE_DEADLINE)
    };
    // The writer connects first so the WAL switch happens before readers open.
    let write = pool(1).connect_with(options.clone()).await?;
    let read = pool(max_connections).connect_with(options).await?;
    Ok((read, write))
}

/// What an extended result code means for the transaction that met it.
pub(super) fn classify(code: i32) -> Fault {
    const UNIQUE: i32 = 2067; // SQLITE_CONSTRAINT_UNIQUE
    const PRIMARY_KEY: i32 = 1555; // SQLITE_CONSTRAINT_PRIMARYKEY
    match code {
        UNIQUE | PRIMARY_KEY => Fault::UniqueViolation,
        code => match code & 0xff {
            // BUSY, LOCKED: another connection holds the lock.
            5 | 6 => Fault::Transient,
            // NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB
            7 | 8 | 10 | 11 | 13 | 14 | 15 | 26 => Fault::Unavailable,
            _ => Fault::Bug,
        },
    }
}

/// Rows as one JSON array of arrays, for set-based statements over `json_each($1)`: one
/// statement for a whole batch instead of one per row.
fn json_rows<T: serde::Serialize>(rows: impl IntoIterator<Item = T>) -> String {
    serde_json::to_string(&rows.into_iter().collect::<Vec<_>>()).expect("rows serialize")
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn instant(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| StoreError::corrupt(micros))
}

#[async_trait]
impl Conn for SqliteConnection {
    async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("SAVEPOINT effect").await?;
        Ok(())
    }

    async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("RELEASE SAVEPOINT effect").await?;
        Ok(())
    }

    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("ROLLBACK TO SAVEPOINT effect").await?;
        self.execute("RELEASE SAVEPOINT effect").await?;
        Ok(())
    }

    async fn probe_write(&mut self) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO health_probes (pad) VALUES (zeroblob(8192))")
            .execute(&mut *self)
            .await?;
        self.execute("DELETE FROM health_probes").await?;
        Ok(())
    }

    /// SQLite locks the whole database, never a row: no row is held by anyone.
    async fn held_rows(&mut self, _rows: &[Row]) -> Result<Vec<Row>, StoreError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_are_classified_by_what_a_retry_can_do() {
        assert_eq!(classify(5), Fault::Transient);
        assert_eq!(classify(517), Fault::Transient, "BUSY_SNAPSHOT");
        assert_eq!(classify(13), Fault::Unavailable, "FULL");
        assert_eq!(classify(778), Fault::Unavailable, "IOERR_WRITE");
        assert_eq!(classify(8), Fault::Unavailable, "READONLY");
        assert_eq!(classify(2067), Fault::UniqueViolation);
        assert_eq!(classify(275), Fault::Bug, "CONSTRAINT_CHECK");
        assert_eq!(classify(1), Fault::Bug);
    }
}
