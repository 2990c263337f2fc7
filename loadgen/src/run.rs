//! `loadgen run`: scenarios against a server that is already running.

use crate::api::Api;
use crate::check;
use crate::cli::RunArgs;
use crate::scenario::{self, Ceiling, Scenario};
use crate::wal::WalMeter;

/// `loadgen run`: the selected scenarios against a running server. With more than one, the HTTP
/// ceiling is measured first and each throughput is also given as a fraction of it.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let load = &args.load;
    let api = Api::new(&args.base_url, &args.jwt_secret, load.concurrency)?;
    let ceiling = if args.scenario.0.len() > 1 {
        let health = scenario::run(
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
        let outcome = scenario::run(&api, scenario, load, scenario.load(load), meter).await?;
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
        held &= check::print(&outcome.checks);
    }
    Ok(held)
}
