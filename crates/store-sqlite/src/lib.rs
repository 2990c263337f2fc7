//! The SQLite backend of commerce's store, on rusqlite (SQLite bundled).
//!
//! A statement here is a plain function call (a few µs), no hop to a driver's thread: writes
//! run whole batches on the committer's own thread (`writer`), reads on the caller's thread
//! with a connection of their own (`read`). The async trait methods do their work at once and
//! return ready futures. Every statement is prepared once per connection and cached.
//!
//! Instants are stored as microseconds since the epoch (SQLite has no timestamp type) and
//! shop days as `YYYY-MM-DD` text.

mod audit;
mod balance;
mod coupon;
mod engine;
mod idempotency;
mod migrate;
mod order;
mod outbox;
mod platform;
mod product;
mod read;
mod webhook;
mod writer;

pub use engine::connect;

pub(crate) use migrate::migrate;
pub(crate) use read::{ReadConn, Readers};
pub(crate) use writer::Writer;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OpenFlags, OptionalExtension, Params};
use std::time::Duration;

use commerce_store::{Conn, Fault, Row, StoreError};

/// How long a statement waits for another connection's lock before it fails as busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: every statement of the code base fits.
const CACHED_STATEMENTS: usize = 128;

/// Where the database is: the URL's path and query, as an SQLite URI (`mode=` and the like
/// keep their meaning).
#[derive(Debug, Clone)]
pub(crate) struct Location {
    uri: String,
}

impl Location {
    /// `sqlite://PATH` or `sqlite:PATH`, with an optional `?query`.
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::new(Fault::Bug, "not an SQLite URL"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(StoreError::new(Fault::Bug, "the SQLite URL names no file"));
        }
        // Only these characters would change what the URI says.
        let path = path
            .replace('%', "%25")
            .replace('?', "%3f")
            .replace('#', "%23");
        let uri = if query.is_empty() {
            format!("file:{path}")
        } else {
            format!("file:{path}?{query}")
        };
        Ok(Location { uri })
    }

    /// A connection with the pragmas every connection has; `flags` say how it may open.
    fn open(&self, flags: OpenFlags) -> Result<SqliteConn, StoreError> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.uri,
            flags | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        // WAL lets readers run beside the writer; synchronous=FULL makes every commit durable
        // against power loss, not only against a crash of this process.
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
            .map_err(db)?;
        conn.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
        Ok(SqliteConn(conn))
    }
}

/// One rusqlite connection, used as a [`Conn`].
pub(crate) struct SqliteConn(rusqlite::Connection);

impl std::fmt::Debug for SqliteConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteConn")
    }
}

impl SqliteConn {
    /// Runs a statement that returns no rows; how many rows it changed.
    fn run(&self, sql: &str, params: impl Params) -> Result<usize, StoreError> {
        self.0
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(params))
            .map_err(db)
    }

    fn all<T>(
        &self,
        sql: &str,
        params: impl Params,
        read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut statement = self.0.prepare_cached(sql).map_err(db)?;
        let rows = statement.query_map(params, read).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn optional<T>(
        &self,
        sql: &str,
        params: impl Params,
        read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        self.0
            .prepare_cached(sql)
            .and_then(|mut statement| statement.query_row(params, read).optional())
            .map_err(db)
    }

    fn one<T>(
        &self,
        sql: &str,
        params: impl Params,
        read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.0
            .prepare_cached(sql)
            .and_then(|mut statement| statement.query_row(params, read))
            .map_err(db)
    }
}

/// A driver error as a [`StoreError`]: SQLite's extended result code decides.
pub(crate) fn db(error: rusqlite::Error) -> StoreError {
    let fault = match &error {
        rusqlite::Error::SqliteFailure(failure, _) => classify(failure.extended_code),
        // Reading a row the code did not expect, and the like.
        _ => Fault::Bug,
    };
    StoreError::new(fault, error)
}

/// What an extended result code means for the transaction that met it.
pub(crate) fn classify(code: i32) -> Fault {
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

/// Rows as one JSON array of arrays, for set-based statements over `json_each(?1)`: one
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
impl Conn for SqliteConn {
    async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.run("SAVEPOINT effect", [])?;
        Ok(())
    }

    async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.run("RELEASE SAVEPOINT effect", [])?;
        Ok(())
    }

    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.run("ROLLBACK TO SAVEPOINT effect", [])?;
        self.run("RELEASE SAVEPOINT effect", [])?;
        Ok(())
    }

    async fn probe_write(&mut self) -> Result<(), StoreError> {
        self.run(
            "INSERT INTO health_probes (pad) VALUES (zeroblob(8192))",
            [],
        )?;
        self.run("DELETE FROM health_probes", [])?;
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

    #[test]
    fn driver_errors_are_classified_by_their_extended_code() {
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        assert_eq!(db(failure(5)).fault(), Fault::Transient);
        assert_eq!(db(failure(13)).fault(), Fault::Unavailable);
        assert_eq!(db(rusqlite::Error::QueryReturnedNoRows).fault(), Fault::Bug);
    }

    #[test]
    fn urls_become_uris_that_keep_their_query() {
        let uri = |url| Location::parse(url).expect("a URL").uri;
        assert_eq!(uri("sqlite://shop.db"), "file:shop.db");
        assert_eq!(uri("sqlite:///tmp/a#b.db"), "file:/tmp/a%23b.db");
        assert_eq!(
            uri("sqlite:///tmp/shop.db?mode=rwc"),
            "file:/tmp/shop.db?mode=rwc"
        );
        assert!(Location::parse("sqlite://").is_err());
    }
}
