//! The PostgreSQL implementation of the storage interface, on sqlx's native driver.

mod balance;
mod coupon;
mod idempotency;
mod order;
mod outbox;
mod platform;
mod product;

use async_trait::async_trait;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgConnection, PgPool};

use super::{Conn, Fault, Row, StoreError, WRITE_DEADLINE};

/// How every write transaction starts. A write waits at most this long for a row another
/// session holds: a batch's rows are held by another batch for milliseconds, so a longer wait
/// means a stuck session (a manual transaction, a stalled instance); then the committer sets
/// aside the writes that need that row and the others go on.
pub(super) const BEGIN: &str = "BEGIN; SET LOCAL lock_timeout = '500ms'";

pub(super) async fn pool(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        // A connection that does not come within the write deadline is an outage, not a
        // reason to hold the request any longer.
        .acquire_timeout(WRITE_DEADLINE)
        .connect(url)
        .await?)
}

/// What a SQLSTATE means for the transaction that met it (PostgreSQL appendix A).
pub(super) fn classify(sqlstate: &str) -> Fault {
    match sqlstate {
        // serialization_failure, deadlock_detected, query_canceled
        "40001" | "40P01" | "57014" => Fault::Transient,
        // lock_not_available: `lock_timeout` ran out (see `BEGIN`).
        "55P03" => Fault::LockHeld,
        // admin_shutdown, crash_shutdown: this connection is gone, a new one may work.
        "57P01" | "57P02" => Fault::Transient,
        // cannot_connect_now (starting up or shutting down), read_only_sql_transaction
        "57P03" | "25006" => Fault::Unavailable,
        "23505" => Fault::UniqueViolation,
        code => match &code[..2] {
            // connection_exception: the connection broke before COMMIT.
            "08" => Fault::Transient,
            // insufficient_resources (disk full, out of memory, too many connections),
            // program_limit_exceeded, system_error (I/O), internal_error
            "53" | "54" | "58" | "XX" => Fault::Unavailable,
            // data_exception, integrity_constraint_violation, syntax errors and the rest: the
            // code sent something it should not have.
            _ => Fault::Bug,
        },
    }
}

#[async_trait]
impl Conn for PgConnection {
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
        sqlx::query("INSERT INTO health_probes (pad) VALUES (repeat('x', 8192))")
            .execute(&mut *self)
            .await?;
        self.execute("DELETE FROM health_probes").await?;
        Ok(())
    }

    /// Rows that exist but cannot be locked now: `SKIP LOCKED` passes over rows another
    /// transaction holds, so what exists and was not returned is held elsewhere. The caller
    /// rolls back, which lets the rows it did lock go at once.
    async fn held_rows(&mut self, rows: &[Row]) -> Result<Vec<Row>, StoreError> {
        let mut kinds: Vec<Row> = rows.iter().map(|r| r.with_key(0)).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut held = Vec::new();
        for kind in kinds {
            let keys: Vec<i64> = rows
                .iter()
                .filter(|r| r.with_key(0) == kind)
                .map(|r| r.key())
                .collect();
            let (table, key) = kind.table();
            let free: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT {key} FROM {table} WHERE {key} = ANY($1) FOR UPDATE SKIP LOCKED"
            ))
            .bind(&keys)
            .fetch_all(&mut *self)
            .await?;
            let existing: Vec<i64> =
                sqlx::query_scalar(&format!("SELECT {key} FROM {table} WHERE {key} = ANY($1)"))
                    .bind(&keys)
                    .fetch_all(&mut *self)
                    .await?;
            held.extend(
                existing
                    .into_iter()
                    .filter(|k| !free.contains(k))
                    .map(|k| kind.with_key(k)),
            );
        }
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified_by_what_a_retry_can_do() {
        assert_eq!(classify("40001"), Fault::Transient);
        assert_eq!(classify("40P01"), Fault::Transient);
        assert_eq!(classify("55P03"), Fault::LockHeld);
        assert_eq!(classify("57P01"), Fault::Transient);
        assert_eq!(classify("08006"), Fault::Transient);
        assert_eq!(classify("53100"), Fault::Unavailable);
        assert_eq!(classify("58030"), Fault::Unavailable);
        assert_eq!(classify("23505"), Fault::UniqueViolation);
        assert_eq!(classify("22021"), Fault::Bug, "a NUL byte in text is a bug");
        assert_eq!(classify("23514"), Fault::Bug);
    }
}
