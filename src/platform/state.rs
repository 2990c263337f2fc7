//! What the platform's handlers, consumers and job use.

use chrono::NaiveTime;
use chrono_tz::Tz;
use std::sync::Arc;

use super::popular::Platform;
use crate::clock::Clock;
use crate::store::Db;

#[derive(Clone)]
pub struct PlatformState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// The shop's time zone: sales count on the shop's days.
    pub time_zone: Tz,
    /// When, in the shop's time zone, the daily job runs for the day before.
    pub daily_job_at: NaiveTime,
    /// The last popular-products answer.
    pub popular: Arc<Platform>,
}
