//! Time. Business rules (issue windows, coupon expiry, the sales day) read the clock through this
//! trait so tests can set the time; production uses the system clock.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use std::sync::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    /// Microsecond precision: what the database stores, so a response and a later read agree.
    fn now(&self) -> DateTime<Utc> {
        from_micros(to_micros(Utc::now()))
    }
}

/// A clock that stands still until moved; for tests.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// Timestamps are stored as microseconds since the Unix epoch: portable across both databases
/// and cheap to compare.
pub fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The calendar day of an instant in the shop's time zone.
pub fn shop_day(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The instants `[start, end)` that make up a calendar day in the shop's time zone. Days that
/// start in a DST gap begin at the first instant that exists.
pub fn day_bounds(day: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let start_of = |d: NaiveDate| {
        let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        tz.from_local_datetime(&midnight)
            .earliest()
            .unwrap_or_else(|| tz.from_utc_datetime(&midnight))
            .with_timezone(&Utc)
    };
    (
        start_of(day),
        start_of(day.succ_opt().expect("day after exists")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seoul_day_starts_at_fifteen_utc_the_day_before() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let (start, end) = day_bounds(day, chrono_tz::Asia::Seoul);
        assert_eq!(start.to_rfc3339(), "2026-11-23T15:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-11-24T15:00:00+00:00");
        assert_eq!(shop_day(start, chrono_tz::Asia::Seoul), day);
        assert_eq!(
            shop_day(
                end - chrono::Duration::microseconds(1),
                chrono_tz::Asia::Seoul
            ),
            day
        );
    }

    #[test]
    fn the_system_clock_has_the_stored_precision() {
        let now = SystemClock.now();
        assert_eq!(from_micros(to_micros(now)), now);
    }

    #[test]
    fn micros_round_trip() {
        let now = Utc::now();
        assert_eq!(
            from_micros(to_micros(now)).timestamp_micros(),
            now.timestamp_micros()
        );
    }
}
