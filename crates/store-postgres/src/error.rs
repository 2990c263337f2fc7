//! sqlx's errors as the store's, classified by what a retry can do.

use commerce_store::{Fault, StoreError};

/// A driver error as a [`StoreError`]: the SQLSTATE decides, or what broke.
pub(crate) fn db(error: sqlx::Error) -> StoreError {
    let fault = match &error {
        sqlx::Error::Database(database) => {
            match database.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                Some(pg) => classify(pg.code()),
                None => Fault::Bug,
            }
        }
        // The connection broke mid-transaction: nothing was committed; a fresh connection may
        // succeed.
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => Fault::Transient,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            Fault::Unavailable
        }
        _ => Fault::Bug,
    };
    StoreError::new(fault, error)
}

/// The error of a failed `COMMIT`: only an answer from the database says nothing was stored.
pub(crate) fn from_commit(error: sqlx::Error) -> StoreError {
    let answered = matches!(error, sqlx::Error::Database(_));
    StoreError::from_commit(db(error), answered)
}

/// What a SQLSTATE means for the transaction that met it (PostgreSQL appendix A).
pub(crate) fn classify(sqlstate: &str) -> Fault {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn connection_reset() -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        ))
    }

    #[test]
    fn a_connection_lost_before_commit_is_retried_but_during_commit_is_unknown() {
        assert_eq!(db(connection_reset()).fault(), Fault::Transient);
        assert_eq!(
            from_commit(connection_reset()).fault(),
            Fault::OutcomeUnknown
        );
    }

    #[test]
    fn driver_errors_without_a_database_code_are_classified_too() {
        assert_eq!(db(sqlx::Error::PoolTimedOut).fault(), Fault::Unavailable);
        assert_eq!(db(sqlx::Error::PoolClosed).fault(), Fault::Unavailable);
        assert_eq!(db(sqlx::Error::RowNotFound).fault(), Fault::Bug);
        assert_eq!(
            from_commit(sqlx::Error::PoolTimedOut).fault(),
            Fault::Unavailable
        );
    }

    /// A serialization failure provoked on a real server is transient: a retry may succeed.
    #[tokio::test]
    async fn a_real_serialization_failure_is_transient() {
        use sqlx::{Connection, Executor, PgConnection};
        let url = std::env::var("COMMERCE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let table = format!("serialization_{}", std::process::id());
        let mut setup = PgConnection::connect(&url).await.expect("PostgreSQL");
        setup
            .execute((format!("CREATE TABLE {table} (id INT PRIMARY KEY, n INT)")).as_str())
            .await
            .unwrap();
        setup
            .execute((format!("INSERT INTO {table} VALUES (1, 0)")).as_str())
            .await
            .unwrap();
        let mut first = PgConnection::connect(&url).await.unwrap();
        first
            .execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await
            .unwrap();
        first
            .execute((format!("SELECT n FROM {table}")).as_str())
            .await
            .unwrap();
        let bump = format!("UPDATE {table} SET n = n + 1");
        setup.execute(bump.as_str()).await.unwrap();
        let error = db(first.execute(bump.as_str()).await.unwrap_err());
        first.execute("ROLLBACK").await.unwrap();
        setup
            .execute((format!("DROP TABLE {table}")).as_str())
            .await
            .unwrap();
        assert_eq!(error.fault(), Fault::Transient, "{error}");
    }

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
