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

use super::{Conn, Fault, StoreError, WRITE_DEADLINE};

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
        // serialization_failure, deadlock_detected, lock_not_available, query_canceled
        "40001" | "40P01" | "55P03" | "57014" => Fault::Transient,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified_by_what_a_retry_can_do() {
        assert_eq!(classify("40001"), Fault::Transient);
        assert_eq!(classify("40P01"), Fault::Transient);
        assert_eq!(classify("57P01"), Fault::Transient);
        assert_eq!(classify("08006"), Fault::Transient);
        assert_eq!(classify("53100"), Fault::Unavailable);
        assert_eq!(classify("58030"), Fault::Unavailable);
        assert_eq!(classify("23505"), Fault::UniqueViolation);
        assert_eq!(classify("22021"), Fault::Bug, "a NUL byte in text is a bug");
        assert_eq!(classify("23514"), Fault::Bug);
    }
}
