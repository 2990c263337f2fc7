//! Latency histograms and response counts.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// What one worker saw; workers' recorders are merged at the end.
pub struct Recorder {
    latency: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    codes: BTreeMap<String, u64>,
    errors: u64,
    /// Each 2xx: the request's turn (its place in sending order) and when its answer came,
    /// counted from the start of the run.
    wins: Vec<(u64, Duration)>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            // 1 µs to 60 s at three significant figures.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            statuses: BTreeMap::new(),
            codes: BTreeMap::new(),
            errors: 0,
            wins: Vec::new(),
        }
    }
}

impl Recorder {
    pub fn record(&mut self, took: Duration, status: u16, code: Option<&str>) {
        self.latency.saturating_record(took.as_micros() as u64);
        *self.statuses.entry(status).or_default() += 1;
        if let Some(code) = code {
            *self.codes.entry(code.to_owned()).or_default() += 1;
        }
    }

    /// A 2xx answer to request number `turn`, `at` after the run began.
    pub fn won(&mut self, turn: u64, at: Duration) {
        self.wins.push((turn, at));
    }

    /// A request that got no HTTP answer at all (connection refused, timeout).
    pub fn failed(&mut self) {
        self.errors += 1;
    }

    pub fn merge(&mut self, other: &Recorder) {
        self.latency.add(&other.latency).expect("same bounds");
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        for (code, n) in &other.codes {
            *self.codes.entry(code.clone()).or_default() += n;
        }
        self.errors += other.errors;
        self.wins.extend_from_slice(&other.wins);
    }

    pub fn summary(&self, elapsed: Duration) -> Summary {
        let quantile = |q| Duration::from_micros(self.latency.value_at_quantile(q));
        let requests = self.latency.len();
        Summary {
            requests,
            per_second: requests as f64 / elapsed.as_secs_f64().max(1e-9),
            p50: quantile(0.50),
            p95: quantile(0.95),
            p99: quantile(0.99),
            max: Duration::from_micros(self.latency.max()),
            statuses: self.statuses.clone(),
            codes: self.codes.clone(),
            errors: self.errors,
            wins: self.wins.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub requests: u64,
    pub per_second: f64,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub statuses: BTreeMap<u16, u64>,
    pub codes: BTreeMap<String, u64>,
    pub errors: u64,
    wins: Vec<(u64, Duration)>,
}

/// How a rush for `available` units (or coupons) went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SellOut {
    pub available: u64,
    pub won: u64,
    /// From the first request sent to the last win's answer.
    pub time: Duration,
    /// Wins per second over `time`.
    pub rate: f64,
    /// The share of the first `available` requests sent that won: 1.0 is first come, first
    /// served exactly.
    pub fairness: f64,
}

impl SellOut {
    pub fn cell(&self) -> String {
        format!(
            "{} won in {} = {:.0}/s, fair {:.0} %",
            self.won,
            ms(self.time),
            self.rate,
            self.fairness * 100.0
        )
    }
}

impl Summary {
    /// The rush's sell-out, if anything was won.
    pub fn sell_out(&self, available: u64) -> Option<SellOut> {
        let time = self.wins.iter().map(|(_, at)| *at).max()?;
        let won = self.wins.len() as u64;
        let early = self
            .wins
            .iter()
            .filter(|(turn, _)| *turn < available)
            .count();
        Some(SellOut {
            available,
            won,
            time,
            rate: won as f64 / time.as_secs_f64().max(1e-9),
            fairness: early as f64 / available.max(1) as f64,
        })
    }

    pub fn line(&self, name: &str) -> String {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}:{n}"))
            .collect();
        let codes: Vec<String> = self.codes.iter().map(|(c, n)| format!("{c}:{n}")).collect();
        format!(
            "{name:<22} {:>9.0} req/s ({} requests)  p50 {}  p95 {}  p99 {}  max {}  [{}] {}{}",
            self.per_second,
            self.requests,
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            ms(self.max),
            statuses.join(" "),
            codes.join(" "),
            if self.errors > 0 {
                format!(" transport-errors:{}", self.errors)
            } else {
                String::new()
            }
        )
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_counts_come_from_all_workers() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for ms in 1..=90 {
            a.record(Duration::from_millis(ms), 201, None);
        }
        for ms in 91..=100 {
            b.record(Duration::from_millis(ms), 409, Some("OUT_OF_STOCK"));
        }
        b.failed();
        a.merge(&b);
        let summary = a.summary(Duration::from_secs(2));
        assert_eq!(summary.requests, 100);
        assert_eq!(summary.per_second, 50.0);
        assert!((49..=51).contains(&summary.p50.as_millis()));
        assert!((98..=100).contains(&summary.p99.as_millis()));
        assert_eq!(summary.statuses[&201], 90);
        assert_eq!(summary.codes["OUT_OF_STOCK"], 10);
        assert_eq!(summary.errors, 1);
        assert!(summary.line("x").contains("OUT_OF_STOCK:10"));
    }

    #[test]
    fn a_sell_out_counts_wins_their_time_and_how_many_came_first() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        // Five units; turns 0..10 were sent; 0, 1, 2, 3 and the late 7 won.
        for (turn, ms) in [(0, 10), (2, 30), (7, 250)] {
            a.won(turn, Duration::from_millis(ms));
        }
        for (turn, ms) in [(1, 20), (3, 40)] {
            b.won(turn, Duration::from_millis(ms));
        }
        a.merge(&b);
        let sell_out = a.summary(Duration::from_secs(1)).sell_out(5).unwrap();
        assert_eq!((sell_out.available, sell_out.won), (5, 5));
        assert_eq!(sell_out.time, Duration::from_millis(250));
        assert_eq!(sell_out.rate, 20.0);
        assert_eq!(sell_out.fairness, 0.8);
        assert_eq!(sell_out.cell(), "5 won in 250.00 ms = 20/s, fair 80 %");
        assert_eq!(
            Recorder::default()
                .summary(Duration::from_secs(1))
                .sell_out(5),
            None
        );
    }

    #[test]
    fn milliseconds_print_with_two_decimals() {
        assert_eq!(ms(Duration::from_micros(1234)), "1.23 ms");
    }
}
