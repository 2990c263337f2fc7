//! `loadgen bench`: for each backend, a fresh database and a server of its own, the HTTP and
//! database ceilings, every scenario, and one table.

use anyhow::Context;
use sqlx::{Connection, Executor};
use std::path::PathBuf;

use crate::api::Api;
use crate::ceiling;
use crate::cli::{BackendName, BenchArgs, LoadArgs, ScenarioName};
use crate::report::{self, Row};
use crate::scenario::{self, print_checks};
use crate::server::{RssSampler, Server};

const SECRET: &str = "loadgen-bench-secret";

/// Scenarios measured against the HTTP ceiling, in order.
const READS_AND_RUSHES: [ScenarioName; 6] = [
    ScenarioName::Detail,
    ScenarioName::Popular,
    ScenarioName::Browse,
    ScenarioName::Charge,
    ScenarioName::CouponRush,
    ScenarioName::Mixed,
];

pub async fn bench(args: BenchArgs) -> anyhow::Result<bool> {
    let bin = match &args.server_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("commerce"),
    };
    anyhow::ensure!(
        bin.exists(),
        "no server binary at {} (build it: cargo build --release --workspace)",
        bin.display()
    );
    let mut rows = Vec::new();
    let mut all_held = true;
    for backend in &args.backends {
        let database = Database::create(*backend, &args.postgres_url).await?;
        let server = Server::start(&bin, &database.url, SECRET).await?;
        let held = measure(
            &server,
            &database.url,
            backend_name(*backend),
            &args.load,
            &mut rows,
        )
        .await;
        server.stop().await?;
        database.drop_it().await;
        all_held &= held?;
    }
    let table = report::table(&rows);
    println!("\n{table}");
    std::fs::create_dir_all(&args.out)?;
    let file = args.out.join(format!(
        "{}.md",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::write(&file, format!("{}\n\n{table}", machine()))?;
    println!("written to {}", file.display());
    Ok(all_held)
}

async fn measure(
    server: &Server,
    url: &str,
    backend: &'static str,
    load: &LoadArgs,
    rows: &mut Vec<Row>,
) -> anyhow::Result<bool> {
    let api = Api::new(&server.base, SECRET, 256)?;
    let mut held = true;
    let scenario_row = |rows: &mut Vec<Row>,
                        name: String,
                        concurrency,
                        summary: crate::stats::Summary,
                        rss,
                        ok| {
        println!(
            "{}",
            summary.line(&format!("{backend} {name} c{concurrency}"))
        );
        rows.push(Row {
            backend,
            scenario: name,
            concurrency,
            summary,
            ratio: None,
            peak_rss_mb: Some(rss),
            invariants: ok,
        });
    };

    let sampler = RssSampler::start(server.pid);
    let (health, _, _) = scenario::run(&api, ScenarioName::Health, load).await?;
    let http_ceiling = health.per_second;
    scenario_row(
        rows,
        "health (HTTP ceiling)".into(),
        load.concurrency,
        health,
        sampler.stop().await,
        None,
    );

    for name in READS_AND_RUSHES {
        let sampler = RssSampler::start(server.pid);
        let (summary, checks, _) = scenario::run(&api, name, load).await?;
        let ok = print_checks(&checks);
        held &= ok;
        let ratio = summary.per_second / http_ceiling;
        scenario_row(
            rows,
            label(name),
            load.concurrency,
            summary,
            sampler.stop().await,
            Some(ok),
        );
        rows.last_mut().expect("pushed").ratio = Some((ratio, "HTTP"));
    }

    for concurrency in [load.concurrency, 256] {
        let load = LoadArgs {
            concurrency,
            ..load.clone()
        };
        for name in [ScenarioName::OrderHot, ScenarioName::OrderSpread] {
            if name == ScenarioName::OrderHot && concurrency != load.concurrency {
                continue;
            }
            let sampler = RssSampler::start(server.pid);
            let (summary, checks, fixture) = scenario::run(&api, name, &load).await?;
            let ok = print_checks(&checks);
            held &= ok;
            let rss = sampler.stop().await;
            if name == ScenarioName::OrderSpread {
                let db = ceiling::database(url, &fixture, concurrency, load.duration).await?;
                let ratio = summary.per_second / db.per_second;
                scenario_row(rows, label(name), concurrency, summary, rss, Some(ok));
                rows.last_mut().expect("pushed").ratio = Some((ratio, "DB"));
                println!(
                    "{}",
                    db.line(&format!("{backend} DB ceiling c{concurrency}"))
                );
                rows.push(Row {
                    backend,
                    scenario: "order transaction without HTTP (DB ceiling)".into(),
                    concurrency,
                    summary: db,
                    ratio: None,
                    peak_rss_mb: None,
                    invariants: None,
                });
            } else {
                scenario_row(rows, label(name), concurrency, summary, rss, Some(ok));
            }
        }
    }
    Ok(held)
}

fn label(name: ScenarioName) -> String {
    match name {
        ScenarioName::CouponRush => "coupon-rush (users for coupons, one request each)".into(),
        ScenarioName::OrderHot => "order-rush, one hot product (one request each)".into(),
        ScenarioName::OrderSpread => "order-rush, spread over 100 products".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn backend_name(backend: BackendName) -> &'static str {
    match backend {
        BackendName::Sqlite => "sqlite",
        BackendName::Postgres => "postgres",
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    format!("Machine: {cpus} cores ({model}); the server, the database and the load generator share them.")
}

/// A fresh database for one backend's run.
struct Database {
    url: String,
    admin_url: Option<String>,
    name: String,
    _dir: Option<PathBuf>,
}

impl Database {
    async fn create(backend: BackendName, postgres_url: &str) -> anyhow::Result<Database> {
        let name = format!("loadgen_{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        match backend {
            BackendName::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir)?;
                Ok(Database {
                    url: format!("sqlite://{}/bench.db", dir.display()),
                    admin_url: None,
                    name,
                    _dir: Some(dir),
                })
            }
            BackendName::Postgres => {
                let mut conn = sqlx::PgConnection::connect(postgres_url)
                    .await
                    .context("PostgreSQL for the bench")?;
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await?;
                let base = postgres_url
                    .rsplit_once('/')
                    .map(|(base, _)| base)
                    .context("a database in the URL")?;
                Ok(Database {
                    url: format!("{base}/{name}"),
                    admin_url: Some(postgres_url.to_owned()),
                    name,
                    _dir: None,
                })
            }
        }
    }

    async fn drop_it(self) {
        if let Some(admin) = &self.admin_url {
            if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
                    .await;
            }
        }
        if let Some(dir) = &self._dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
