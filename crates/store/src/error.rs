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

    /// The error of a failed `COMMIT`: a refusal from the database (`answered`) means nothing
    /// was stored, but a connection that broke while the COMMIT was under way leaves the outcome
    /// unknown.
    pub fn from_commit(classified: StoreError, answered: bool) -> Self {
        match classified.fault {
            Fault::Transient if !answered => StoreError {
                fault: Fault::OutcomeUnknown,
                ..classified
            },
            _ => classified,
        }
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

    #[test]
    fn a_connection_lost_during_commit_leaves_the_outcome_unknown() {
        let lost = || StoreError::new(Fault::Transient, "connection reset by peer");
        assert_eq!(
            StoreError::from_commit(lost(), false).fault(),
            Fault::OutcomeUnknown
        );
        assert_eq!(
            StoreError::from_commit(lost(), true).fault(),
            Fault::Transient
        );
        let full = StoreError::new(Fault::Unavailable, "disk full");
        assert_eq!(
            StoreError::from_commit(full, false).fault(),
            Fault::Unavailable
        );
    }
}
