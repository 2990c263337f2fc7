use thiserror::Error;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("unsupported database URL: use sqlite://PATH or postgres://...")]
    UnsupportedUrl,
    #[error("migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

impl DbError {
    /// Failures that a fresh attempt of the same transaction can get past.
    pub fn is_transient(&self) -> bool {
        let DbError::Sqlx(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::PoolTimedOut => true,
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // PostgreSQL: serialization_failure, deadlock_detected, lock_not_available.
                Some("40001" | "40P01" | "55P03") => true,
                // SQLite: BUSY and LOCKED with all their extended codes.
                Some(code) => code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
                None => false,
            },
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(db)) if db.is_unique_violation())
    }
}
