//! Storage errors, classified from the driver's typed error by the backend that raised it.

use thiserror::Error;

/// What a storage failure means for the request that met it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Busy, locked, serialization failure, deadlock, or the connection was lost before
    /// `COMMIT` was sent: the transaction did not happen and may simply run again.
    Transient,
    /// A row the write needs is locked by another session for longer than a write may wait
    /// for it (PostgreSQL's `lock_timeout`): nothing happened; the committer finds which rows
    /// and sets aside only the writes that need them.
    LockHeld,
    /// The database cannot store anything now (disk full, I/O error, read-only, unreachable,
    /// no connection within the deadline): answer 503 and let the client retry later.
    Unavailable,
    /// The connection broke while `COMMIT` was under way: the write may or may not be stored.
    OutcomeUnknown,
    /// A unique constraint refused the row: callers map it to the contract's error.
    UniqueViolation,
    /// Anything else: a statement or data the code should never have produced. Never retried.
    Bug,
}

#[derive(Debug, Error)]
#[error("{fault:?} storage error: {source}")]
pub struct StoreError {
    fault: Fault,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    pub fn new(fault: Fault, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            fault,
            source: source.into(),
        }
    }

    pub fn fault(&self) -> Fault {
        self.fault
    }

    /// A retry may succeed where this attempt failed.
    pub fn is_transient(&self) -> bool {
        matches!(self.fault, Fault::Transient | Fault::LockHeld)
    }

    pub fn is_unique_violation(&self) -> bool {
        self.fault == Fault::UniqueViolation
    }

    /// Stored data that the code cannot read back: a bug or a hand edit, never retried.
    pub fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::new(Fault::Bug, format!("stored data is not readable: {what}"))
    }

    /// The error of a failed `COMMIT`: a refusal from the database means nothing was stored,
    /// but a broken connection leaves the outcome unknown.
    pub(super) fn from_commit(error: impl Into<StoreError>) -> Self {
        let classified = error.into();
        match classified.fault {
            Fault::Transient if !is_database_answer(&classified) => StoreError {
                fault: Fault::OutcomeUnknown,
                ..classified
            },
            _ => classified,
        }
    }
}

fn is_database_answer(error: &StoreError) -> bool {
    let sqlx = error.source.downcast_ref::<sqlx::Error>();
    let sqlite = error.source.downcast_ref::<rusqlite::Error>();
    sqlx.is_some_and(|e| matches!(e, sqlx::Error::Database(_)))
        || sqlite.is_some_and(|e| matches!(e, rusqlite::Error::SqliteFailure(..)))
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let fault = match &error {
            sqlx::Error::Database(db) => {
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    super::postgres::classify(pg.code())
                } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // The SQLite driver reports the extended result code as a number.
                    let code = db.code().and_then(|c| c.parse().ok()).unwrap_or(1);
                    super::sqlite::classify(code)
                } else {
                    Fault::Bug
                }
            }
            // The connection broke mid-transaction: nothing was committed; a fresh connection
            // may succeed.
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => Fault::Transient,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                Fault::Unavailable
            }
            _ => Fault::Bug,
        };
        StoreError::new(fault, error)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        let fault = match &error {
            rusqlite::Error::SqliteFailure(failure, _) => {
                super::sqlite::classify(failure.extended_code)
            }
            // Reading a row the code did not expect, and the like.
            _ => Fault::Bug,
        };
        StoreError::new(fault, error)
    }
}

/// Errors of services that can carry a storage error: the transaction runner asks them whether
/// a failure is the database's (roll back, discard the connection, maybe retry) or a business
/// rejection (roll back, answer it).
pub trait StoreFault {
    fn store_error(&self) -> Option<&StoreError>;
}

impl StoreFault for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
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
        assert_eq!(
            StoreError::from(connection_reset()).fault(),
            Fault::Transient
        );
        assert_eq!(
            StoreError::from_commit(connection_reset()).fault(),
            Fault::OutcomeUnknown
        );
    }

    #[test]
    fn driver_errors_without_a_database_code_are_classified_too() {
        let fault = |e| StoreError::from(e).fault();
        assert_eq!(fault(sqlx::Error::PoolTimedOut), Fault::Unavailable);
        assert_eq!(fault(sqlx::Error::PoolClosed), Fault::Unavailable);
        assert_eq!(fault(sqlx::Error::RowNotFound), Fault::Bug);
        assert_eq!(
            StoreError::from_commit(sqlx::Error::PoolTimedOut).fault(),
            Fault::Unavailable
        );
    }

    #[test]
    fn sqlite_answers_are_classified_by_their_extended_code() {
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None);
        assert_eq!(StoreError::from_commit(busy).fault(), Fault::Transient);
        let full = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(13), None);
        assert_eq!(StoreError::from(full).fault(), Fault::Unavailable);
        assert_eq!(
            StoreError::from(rusqlite::Error::QueryReturnedNoRows).fault(),
            Fault::Bug
        );
    }
}
