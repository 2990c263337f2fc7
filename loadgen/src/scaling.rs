//! `loadgen bench --instances N`: N servers on one PostgreSQL database, requests spread over
//! them round-robin as a load balancer would, against one of them in the same run: how reads
//! and writes scale with instances on this machine.

use std::path::Path;

use crate::api::Api;
use crate::check;
use crate::cli::{Backend, BenchArgs};
use crate::database;
use crate::scenario::{self, Scenario};
use crate::server;
use crate::stats::ms;

/// A read and a write scenario: product detail, orders spread over many products.
const MEASURED: [Scenario; 2] = [Scenario::Detail, Scenario::OrderRushSpread];

/// The markdown table of the comparison, and whether every invariant held.
pub async fn compare(args: &BenchArgs, bin: &Path, secret: &str) -> anyhow::Result<(String, bool)> {
    let instances = usize::from(args.instances);
    let db = database::fresh(Backend::Postgres, &args.postgres_url).await?;
    let mut servers = Vec::with_capacity(instances);
    for _ in 0..instances {
        servers.push(server::start(bin, &db.url, secret, args.db_connections).await?);
    }
    let mut table = String::from(
        "| instances | scenario | conc. | req/s | p50 | p99 | × one instance |\n\
         |---:|---|---:|---:|---:|---:|---:|\n",
    );
    let mut held = true;
    for scenario in MEASURED {
        let mut one = None;
        for count in [1, instances] {
            let bases: Vec<&str> = servers[..count].iter().map(|s| s.base.as_str()).collect();
            let load = scenario.load(&args.load);
            let api = Api::spread(&bases, secret, load.concurrency)?;
            let outcome = scenario::run(&api, scenario, &args.load, load, None).await?;
            held &= check::print(&outcome.checks);
            let summary = &outcome.summary;
            let rate = summary.per_second;
            let ratio = one.map_or("—".to_owned(), |one: f64| format!("{:.2}×", rate / one));
            one.get_or_insert(rate);
            let line = format!(
                "| {count} | {} | {} | {rate:.0} | {} | {} | {ratio} |\n",
                scenario.name(),
                load.concurrency,
                ms(summary.p50),
                ms(summary.p99)
            );
            print!("postgres ×{line}");
            table.push_str(&line);
        }
    }
    for mut server in servers {
        server.kill().await?;
    }
    database::remove(db).await;
    Ok((table, held))
}
