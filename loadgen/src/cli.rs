use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub use crate::plan::LoadArgs;
use crate::scenario::kind::Scenario;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Load generator and benchmark harness for commerce"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios against a running server.
    Run(RunArgs),
    /// Start the server on each backend and measure every scenario against the ceilings.
    Bench(BenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// The server's COMMERCE_JWT_SECRET (loadgen mints its own tokens).
    #[arg(long, env = "COMMERCE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// A scenario, or `all` (the HTTP ceiling first, then every scenario as a fraction of it).
    #[arg(long, value_parser = parse_selection, default_value = "all")]
    pub scenario: Selection,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// The scenarios `--scenario` selected, in the order they run.
#[derive(Debug, Clone)]
pub struct Selection(pub Vec<Scenario>);

fn parse_selection(value: &str) -> Result<Selection, String> {
    if value.eq_ignore_ascii_case("all") {
        return Ok(Selection(Scenario::ALL.to_vec()));
    }
    Scenario::from_str(value, true)
        .map(|scenario| Selection(vec![scenario]))
        .map_err(|_| {
            let names: Vec<String> = Scenario::value_variants()
                .iter()
                .filter_map(|s| s.to_possible_value().map(|v| v.get_name().to_owned()))
                .collect();
            format!("expected all or one of: {}", names.join(", "))
        })
}

/// The project's one backend type.
pub use commerce::store::Backend;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["sqlite", "postgres"])]
    pub backends: Vec<Backend>,
    /// The server binary (default: `commerce` beside this executable).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// A PostgreSQL database the bench may run CREATE DATABASE from.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_url: String,
    /// Database connections, for the server (COMMERCE_DB_MAX_CONNECTIONS) and the DB ceiling
    /// alike, so the two compare the same pool.
    #[arg(long, default_value_t = 16)]
    pub db_connections: u32,
    /// The open-loop order run offers this fraction of the closed-loop order-rush-spread
    /// throughput (the peak), to check its p99.
    #[arg(long, default_value_t = 0.65)]
    pub paced_fraction: f64,
    /// With 2 or more: also start that many servers on one PostgreSQL database and measure
    /// reads and writes spread over them against one of them, in the same run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub instances: u8,
    /// Where the markdown report is written.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_selects_every_scenario_and_a_name_selects_one() {
        assert_eq!(parse_selection("all").unwrap().0, Scenario::ALL.to_vec());
        assert_eq!(
            parse_selection("order-rush-spread").unwrap().0,
            vec![Scenario::OrderRushSpread]
        );
        let error = parse_selection("nope").unwrap_err();
        assert!(error.contains("coupon-rush"), "{error}");
    }
}
