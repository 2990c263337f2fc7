//! Time. Business rules (issue windows, coupon expiry, the sales day) read the clock through this
//! trait so tests can set the time; production uses the system clock.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use std::str::FromStr;
use std::sync::Mutex;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};

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

/// The years a request may name: those written with four digits, which both databases store
/// and every response writes back as given.
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// An instant in a request: RFC 3339 with an offset, whose year in UTC is 0001..=9999
/// (`0000-01-01T00:00:00+23:59` is in year 0 and is refused, as is year 10000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub const PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$";

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

impl FromStr for Timestamp {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let at = DateTime::parse_from_rfc3339(raw)
            .map_err(|e| format!("`{raw}` is not an RFC 3339 timestamp with offset: {e}"))?
            .to_utc();
        if !YEARS.contains(&at.year()) {
            return Err(format!(
                "`{raw}` is in year {} in UTC; timestamps must be in 0001..=9999",
                at.year()
            ));
        }
        Ok(Timestamp(at))
    }
}

/// A calendar day in a request: exactly `YYYY-MM-DD`, year 0001..=9999 (no sign, no fifth digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(NaiveDate);

impl Day {
    pub const PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

    pub fn get(self) -> NaiveDate {
        self.0
    }
}

impl FromStr for Day {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let refused = || format!("`{raw}` is not a day YYYY-MM-DD with a year 0001..=9999");
        // chrono's `%Y` also takes a sign and more digits, so the shape is checked first.
        let shaped = raw.len() == 10
            && raw.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !shaped {
            return Err(refused());
        }
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .filter(|day| YEARS.contains(&day.year()))
            .map(Day)
            .ok_or_else(refused)
    }
}

/// Both read from a JSON string or a query parameter through `FromStr`.
macro_rules! deserialize_from_str {
    ($($name:ident),*) => {$(
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = std::borrow::Cow::<str>::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

deserialize_from_str!(Timestamp, Day);

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .pattern(Some(Self::PATTERN))
            .description(Some(
                "RFC 3339 with an offset; the instant's year in UTC is 0001..=9999.",
            ))
            .examples(["2026-11-24T09:00:00+09:00"])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

impl utoipa::PartialSchema for Day {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .pattern(Some(Self::PATTERN))
            .into()
    }
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

    #[test]
    fn timestamps_have_four_digit_utc_years() {
        for good in [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2026-11-24T09:00:00+09:00",
            "0001-01-01T23:59:00+23:59",
        ] {
            assert!(good.parse::<Timestamp>().is_ok(), "{good} refused");
        }
        for bad in [
            "0000-01-01T00:00:00+23:59",
            "0000-12-31T23:59:59Z",
            "9999-12-31T23:59:59-23:59",
            "2026-11-24 09:00",
            "2026-11-24T09:00:00",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn days_are_exactly_four_digit_years() {
        assert_eq!(
            "0001-01-01".parse::<Day>().map(Day::get),
            Ok(NaiveDate::from_ymd_opt(1, 1, 1).unwrap())
        );
        assert!("9999-12-31".parse::<Day>().is_ok());
        for bad in [
            "0000-01-01",
            "-4714-11-23",
            "+2026-11-23",
            "12026-11-23",
            "2026-11-31",
            "2026-1-23",
            "2026-11-2",
            "2026/11/23",
            "",
        ] {
            assert!(bad.parse::<Day>().is_err(), "{bad} accepted");
        }
    }
}
