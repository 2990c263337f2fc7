//! Scenarios: what each one sends, the data it runs on, and a run from set-up to verdict.

mod fixture;
mod request;

pub use fixture::Fixture;

use clap::ValueEnum;
use std::sync::Arc;

use crate::api::Api;
use crate::cli::{LoadArgs, RunArgs};
use crate::driver::{drive, Budget, Load};
use crate::invariants::{self, Check, Ledger};
use crate::report::Ceiling;
use crate::stats::{SellOut, Summary};
use crate::wal::WalMeter;
use request::HttpWorker;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// `GET /health/live`, the server's cheapest answer: the HTTP ceiling.
    Health,
    /// Product detail.
    Detail,
    /// Popular products.
    Popular,
    /// Product detail, product list and popular products, mixed.
    Browse,
    /// Balance charges.
    Charge,
    /// --users distinct users race for --coupons coupons of one campaign, one request each.
    CouponRush,
    /// --users distinct users race for --stock units of one product, one request each.
    OrderRushHot,
    /// Orders of one unit each spread over 1,000 products.
    OrderRushSpread,
    /// A realistic blend: mostly browsing, some orders, charges, balance reads, coupon issues, and
    /// cancellations of orders placed earlier in the run.
    Mixed,
}

impl Scenario {
    /// Every scenario but the HTTP ceiling, in the order `all` and the bench run them.
    pub const ALL: [Scenario; 8] = [
        Scenario::Detail,
        Scenario::Popular,
        Scenario::Browse,
        Scenario::Charge,
        Scenario::CouponRush,
        Scenario::OrderRushHot,
        Scenario::OrderRushSpread,
        Scenario::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Health => "health",
            Scenario::Detail => "detail",
            Scenario::Popular => "popular",
            Scenario::Browse => "browse",
            Scenario::Charge => "charge",
            Scenario::CouponRush => "coupon-rush",
            Scenario::OrderRushHot => "order-rush-hot",
            Scenario::OrderRushSpread => "order-rush-spread",
            Scenario::Mixed => "mixed",
        }
    }

    /// Whether its requests store anything (so the WAL per stored write means something).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Scenario::Charge
                | Scenario::CouponRush
                | Scenario::OrderRushHot
                | Scenario::OrderRushSpread
                | Scenario::Mixed
        )
    }

    /// The ceiling the scenario's throughput is a fraction of. Orders that all succeed are
    /// bounded by their transaction; everything else, rushes included (most of their answers are
    /// refusals that need no write), by what HTTP costs.
    pub fn ceiling(self) -> Ceiling {
        match self {
            Scenario::OrderRushSpread => Ceiling::Db,
            _ => Ceiling::Http,
        }
    }

    /// What a rush sells out: the campaign's coupons or the hot product's units.
    pub fn available(self, fixture: &Fixture) -> Option<u64> {
        let count = match self {
            Scenario::CouponRush => fixture.coupon?.1,
            Scenario::OrderRushHot => fixture.initial_stock,
            _ => return None,
        };
        u64::try_from(count).ok()
    }

    /// Rushes send one request per user, however long that takes; the rest run for the budget.
    pub fn load(self, args: &LoadArgs) -> Load {
        let load = args.load();
        match self {
            Scenario::CouponRush | Scenario::OrderRushHot => Load {
                budget: Budget::Requests(args.users as u64),
                ..load
            },
            _ => load,
        }
    }
}

/// A scenario's measurements, the verdict of its invariants, and the data it ran on.
pub struct Outcome {
    pub summary: Summary,
    /// For a rush: how fast and how fairly it sold out.
    pub sell_out: Option<SellOut>,
    pub checks: Vec<Check>,
    pub fixture: Arc<Fixture>,
    /// WAL bytes written while the load ran (not while its data was set up), when measured.
    pub wal_bytes: Option<u64>,
}

impl Outcome {
    /// WAL bytes per 2xx answer, when measured.
    pub fn wal_per_write(&self) -> Option<f64> {
        let stored: u64 = self.summary.statuses.range(200..300).map(|(_, n)| n).sum();
        Some(self.wal_bytes? as f64 / stored.max(1) as f64)
    }
}

/// Sets the scenario's data up, drives `load`, and checks the invariants through the API;
/// with `wal`, measures the WAL the load wrote.
pub async fn run(
    api: &Api,
    scenario: Scenario,
    args: &LoadArgs,
    load: Load,
    wal: Option<&WalMeter>,
) -> anyhow::Result<Outcome> {
    let mut ledger = Ledger::default();
    let fixture = Arc::new(Fixture::prepare(api, scenario, args, &mut ledger).await?);
    let workers = (0..load.concurrency)
        .map(|n| HttpWorker::new(api, scenario, &fixture, n))
        .collect();
    let wal_before = match wal {
        Some(wal) => Some(wal.position().await?),
        None => None,
    };
    let (summary, workers) = drive(scenario.name(), load, workers).await;
    let wal_bytes = match (wal, wal_before) {
        (Some(wal), Some(before)) => Some(wal.position().await?.saturating_sub(before)),
        _ => None,
    };
    for worker in &workers {
        ledger.merge(&worker.ledger);
    }
    let checks = invariants::verify(api, scenario, &fixture, &ledger, &summary).await?;
    let sell_out = scenario
        .available(&fixture)
        .and_then(|available| summary.sell_out(available));
    Ok(Outcome {
        summary,
        sell_out,
        checks,
        fixture,
        wal_bytes,
    })
}

/// `loadgen run`: the selected scenarios against a running server. With more than one, the HTTP
/// ceiling is measured first and each throughput is also given as a fraction of it.
pub async fn run_against(args: RunArgs) -> anyhow::Result<bool> {
    let load = &args.load;
    let api = Api::new(&args.base_url, &args.jwt_secret, load.concurrency)?;
    let ceiling = if args.scenario.0.len() > 1 {
        let health = run(
            &api,
            Scenario::Health,
            load,
            Scenario::Health.load(load),
            None,
        )
        .await?;
        println!("{}", health.summary.line("health (HTTP ceiling)"));
        Some(health.summary.per_second)
    } else {
        None
    };
    // The server's own WAL count (SQLite); a PostgreSQL server shows none.
    let wal = WalMeter::server(&args.base_url);
    let mut held = true;
    for scenario in args.scenario.0 {
        let meter = scenario.writes().then_some(&wal);
        let outcome = run(&api, scenario, load, scenario.load(load), meter).await?;
        let mut line = outcome.summary.line(scenario.name());
        // Only `bench` measures the DB ceiling, which bounds orders that all succeed.
        if let Some(ceiling) = ceiling.filter(|_| scenario.ceiling() == Ceiling::Http) {
            line.push_str(&format!(
                "  = {:.0} % of the HTTP ceiling",
                100.0 * outcome.summary.per_second / ceiling
            ));
        }
        println!("{line}");
        if let Some(sell_out) = outcome.sell_out {
            println!("{:<22} sell-out: {}", "", sell_out.cell());
        }
        if let Some(bytes) = outcome.wal_per_write().filter(|&b| b > 0.0) {
            println!("{:<22} WAL: {bytes:.0} bytes per stored write", "");
        }
        held &= invariants::print(&outcome.checks);
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_command_line_names() {
        for scenario in Scenario::value_variants() {
            let value = scenario.to_possible_value().expect("no hidden scenarios");
            assert_eq!(scenario.name(), value.get_name());
        }
    }

    #[test]
    fn rushes_send_one_request_per_user() {
        let args = LoadArgs {
            concurrency: 8,
            duration: std::time::Duration::from_secs(3),
            requests: None,
            rate: None,
            users: 300,
            coupons: 50,
            stock: 50,
        };
        assert_eq!(
            Scenario::CouponRush.load(&args).budget,
            Budget::Requests(300)
        );
        assert_eq!(
            Scenario::Mixed.load(&args).budget,
            Budget::For(std::time::Duration::from_secs(3))
        );
    }
}
