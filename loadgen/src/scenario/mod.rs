//! Scenarios: what each one sends, the data it runs on, and a run from set-up to verdict.

pub mod fixture;
pub mod kind;
mod request;
pub mod verify;

pub use fixture::Fixture;
pub use kind::{Ceiling, Scenario};

use std::sync::Arc;

use crate::api::Api;
use crate::check::Check;
use crate::driver::{drive, Load};
use crate::ledger::Ledger;
use crate::plan::LoadArgs;
use crate::stats::{SellOut, Summary};
use crate::wal::WalMeter;
use request::HttpWorker;

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
    let checks = verify::verify(api, scenario, &fixture, &ledger, &summary).await?;
    let sell_out = fixture
        .available(scenario)
        .and_then(|available| summary.sell_out(available));
    Ok(Outcome {
        summary,
        sell_out,
        checks,
        fixture,
        wal_bytes,
    })
}
