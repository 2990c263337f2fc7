//! The data platform (데이터 플랫폼): consumes paid-order events into sales per shop day and
//! product, answers the popular-products question from them, and runs the daily job that
//! recomputes each finished day from the orders themselves.

mod consumer;
mod daily;
mod popular;
mod routes;

pub use consumer::{consume, consume_jetstream, Delivered};
pub use daily::{catch_up, daily_job, run_day, run_finished_day, DaySummary};
pub use popular::{popular, Platform, Popular, PopularItem};
pub use routes::routes;

use crate::store::{StoreError, StoreFault};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] StoreError),
}

impl StoreFault for PlatformError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            PlatformError::Db(e) => Some(e),
            PlatformError::Invalid(_) => None,
        }
    }
}
