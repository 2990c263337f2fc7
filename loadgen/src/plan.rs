//! How much load a run offers and how big its rushes are: what `run` and `bench` share, below
//! the scenarios that read it and the command line that fills it.

use clap::Args;
use std::time::Duration;

use crate::driver::{Budget, Load};

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent connections, each with one request in flight at a time.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// How long each time-bound scenario runs.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Send this many requests instead of running for --duration.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Offer this many requests per second (open loop: latency counts from when a request was
    /// due, so a slow server cannot hide its queue) instead of sending as fast as answers come.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Distinct users in coupon-rush and order-rush-hot; each sends one request.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Coupons the coupon-rush campaign has.
    #[arg(long, default_value_t = 1_000)]
    pub coupons: i64,
    /// Units of the hot product in order-rush-hot.
    #[arg(long, default_value_t = 1_000)]
    pub stock: i64,
}

impl LoadArgs {
    /// The load of a time-bound scenario; rushes override the budget with one request per user.
    pub fn load(&self) -> Load {
        Load {
            concurrency: self.concurrency,
            budget: match self.requests {
                Some(n) => Budget::Requests(n),
                None => Budget::For(self.duration),
            },
            rate: self.rate,
        }
    }
}
