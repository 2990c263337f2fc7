//! `loadgen bench`: for each backend, a fresh database and a server of its own, the HTTP
//! ceiling, every scenario, the database and hot-row ceilings, an open-loop order run, and one
//! report.

use std::iter;
use std::path::{Path, PathBuf};

use crate::api::Api;
use crate::ceiling;
use crate::check;
use crate::cli::{Backend, BenchArgs};
use crate::database;
use crate::driver::Load;
use crate::report::{self, Row, Subject};
use crate::scaling;
use crate::scenario::{self, Ceiling, Outcome, Scenario};
use crate::server::{self, RssSampler, Server};
use crate::wal::WalMeter;
use anyhow::Context;

const SECRET: &str = "loadgen-bench-secret-32-bytes-long";

pub async fn bench(args: BenchArgs) -> anyhow::Result<bool> {
    let bin = server_binary(args.server_bin.as_deref())?;
    let mut rows = Vec::new();
    let mut held = true;
    for backend in &args.backends {
        let db = database::fresh(*backend, &args.postgres_url).await?;
        let measured = measure(&args, &bin, *backend, &db.url, &mut rows).await;
        database::remove(db).await;
        held &= measured?;
    }
    let mut table = report::table(&rows);
    if args.instances > 1 {
        let (scaling, ok) = scaling::compare(&args, &bin, SECRET).await?;
        held &= ok;
        table.push_str(&format!(
            "\nPostgreSQL, {} instances on one database against one, same run:\n\n{scaling}",
            args.instances
        ));
    }
    let targets = report::target_list(&report::targets(&rows));
    println!("\n{table}\nTargets (reported, not asserted):\n{targets}");
    std::fs::create_dir_all(&args.out)?;
    let file = args.out.join(format!(
        "{}.md",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    let text = format!(
        "{}\n\n{table}\nTargets (reported, not asserted):\n\n{targets}",
        setting(&args)
    );
    std::fs::write(&file, text)?;
    println!("written to {}", file.display());
    Ok(held)
}

/// `commerce` beside this executable: `cargo build --release --workspace` puts both there.
fn server_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let bin = match given {
        Some(bin) => bin.to_owned(),
        None => std::env::current_exe()?.with_file_name("commerce"),
    };
    anyhow::ensure!(
        bin.exists(),
        "no server binary at {} (build it with `cargo build --release --workspace`, or pass --server-bin)",
        bin.display()
    );
    Ok(bin)
}

/// One backend's measurements, appended to `rows`; true when every invariant held.
async fn measure(
    args: &BenchArgs,
    bin: &Path,
    backend: Backend,
    url: &str,
    rows: &mut Vec<Row>,
) -> anyhow::Result<bool> {
    let load = &args.load;
    let mut held = true;
    let mut server = server::start(bin, url, SECRET, args.db_connections).await?;
    let api = Api::new(&server.base, SECRET, load.concurrency)?;
    let (mut spread, mut hot) = (None, None);
    for scenario in iter::once(Scenario::Health).chain(Scenario::ALL) {
        let outcome = measure_scenario(
            &server,
            &api,
            (backend, url),
            scenario,
            args,
            scenario.load(load),
            rows,
        )
        .await?;
        held &= check::print(&outcome.checks);
        match scenario {
            Scenario::OrderRushSpread => spread = Some(outcome.fixture),
            Scenario::OrderRushHot => hot = Some(outcome.fixture),
            _ => {}
        }
    }
    server.kill().await?;

    // The DB ceiling runs while no server does: on SQLite a second process writing (the server's
    // outbox relay) would make the ceiling wait on the file lock, which the server never does.
    let fixture = spread.expect("order-rush-spread is among the scenarios");
    let ceiling_load = Load {
        rate: None,
        ..Scenario::OrderRushSpread.load(load)
    };
    let db = ceiling::database(url, args.db_connections, &fixture, ceiling_load).await?;
    let row = Row {
        backend: backend.name(),
        subject: Subject::Ceiling(Ceiling::Db),
        load: ceiling_load,
        summary: db,
        sell_out: None,
        peak_rss_mb: None,
        wal_per_write: None,
        invariants: None,
    };
    println!("{}", row.line());
    let ceiling_rate = row.summary.per_second;
    rows.push(row);
    let hot_product = hot.expect("order-rush-hot is among the scenarios").products[0];
    let hot_row = ceiling::hot_row(url, args.db_connections, hot_product, ceiling_load).await?;
    let row = Row {
        backend: backend.name(),
        subject: Subject::Ceiling(Ceiling::HotRow),
        load: ceiling_load,
        summary: hot_row,
        sell_out: None,
        peak_rss_mb: None,
        wal_per_write: None,
        invariants: None,
    };
    println!("{}", row.line());
    rows.push(row);

    // Open loop at a share of the closed loop's peak: the latency a server under that load gives.
    let peak = rows
        .iter()
        .find(|r| r.is(backend.name(), Scenario::OrderRushSpread))
        .map_or(ceiling_rate, |r| r.summary.per_second);
    let mut server = server::start(bin, url, SECRET, args.db_connections).await?;
    let paced = Load {
        rate: Some(peak * args.paced_fraction),
        ..ceiling_load
    };
    let api = Api::new(&server.base, SECRET, load.concurrency)?;
    let outcome = measure_scenario(
        &server,
        &api,
        (backend, url),
        Scenario::OrderRushSpread,
        args,
        paced,
        rows,
    )
    .await?;
    held &= check::print(&outcome.checks);
    server.kill().await?;
    Ok(held)
}

/// Runs a scenario while watching the server's memory and, for writes, the WAL; adds its row.
async fn measure_scenario(
    server: &Server,
    api: &Api,
    (backend, url): (Backend, &str),
    scenario: Scenario,
    args: &BenchArgs,
    load: Load,
    rows: &mut Vec<Row>,
) -> anyhow::Result<Outcome> {
    let sampler = RssSampler::start(server.pid().context("the server's pid")?);
    let wal = WalMeter::new(backend, &server.base, url);
    let meter = scenario.writes().then_some(&wal);
    let mut outcome = scenario::run(api, scenario, &args.load, load, meter).await?;
    // What the API showed, and what the database holds.
    outcome
        .checks
        .extend(scenario::verify::stored(url, &outcome.fixture).await?);
    let row = Row {
        backend: backend.name(),
        subject: match scenario {
            Scenario::Health => Subject::Ceiling(Ceiling::Http),
            _ => Subject::Scenario(scenario),
        },
        load,
        summary: outcome.summary.clone(),
        sell_out: outcome.sell_out,
        peak_rss_mb: Some(sampler.stop().await),
        wal_per_write: outcome.wal_per_write(),
        invariants: Some(outcome.checks.iter().all(|c| c.ok)),
    };
    println!("{}", row.line());
    rows.push(row);
    Ok(outcome)
}

/// What the figures depend on, for the report's reader.
fn setting(args: &BenchArgs) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split(':').nth(1)?.trim().to_owned())
        })
        .unwrap_or_default();
    let load = &args.load;
    format!(
        "Machine: {cpus} cores ({model}); the server, the database and the load generator share them.\n\
         Load: {} connections, {} per time-bound scenario{}; rushes {} users for {} coupons / {} units; \
         {} database connections; the paced order run offers {:.0} % of the DB ceiling.",
        load.concurrency,
        humantime::format_duration(load.duration),
        load.requests.map_or(String::new(), |n| format!(" or {n} requests")),
        load.users,
        load.coupons,
        load.stock,
        args.db_connections,
        args.paced_fraction * 100.0
    )
}
