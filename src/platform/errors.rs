//! The platform's errors and their problem documents.

use crate::http::problem::problem_by_value;
use crate::http::Problem;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] StoreError),
}

crate::store::store_fault!(PlatformError);

impl From<&PlatformError> for Problem {
    fn from(error: &PlatformError) -> Self {
        match error {
            PlatformError::Invalid(detail) => Problem::validation(detail.clone()),
            PlatformError::Db(e) => e.into(),
        }
    }
}

problem_by_value!(PlatformError);
