//! The data platform (데이터 플랫폼): consumes paid-order events into sales per shop day and
//! product, answers the popular-products question from them, and runs the daily job that
//! recomputes each finished day from the orders themselves.

mod consumer;
mod daily;
mod errors;
mod popular;
mod routes;
mod schedule;
mod state;

pub use consumer::{consume, consume_jetstream};
pub use daily::{catch_up, run_day, run_finished_day, DaySummary};
pub use errors::PlatformError;
pub use popular::{popular, Platform, Popular, PopularItem};
pub use routes::routes;
pub use schedule::daily_job;
pub use state::PlatformState;
