use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Run one scenario against a running server.
    Run(RunArgs),
    /// Start the server on each backend and measure every scenario against the ceilings.
    Bench(BenchArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioName {
    /// `GET /health/live`: the HTTP ceiling.
    Health,
    /// Product detail.
    Detail,
    /// Popular products.
    Popular,
    /// Product detail, product list and popular, mixed.
    Browse,
    /// Balance charges.
    Charge,
    /// N distinct users race for M coupons of one campaign, one request each.
    CouponRush,
    /// Many users, one product each on one hot product with limited stock, one request each.
    OrderHot,
    /// Orders spread over many products.
    OrderSpread,
    /// A realistic blend of browsing, orders, charges and coupon issues.
    Mixed,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// The server's COMMERCE_JWT_SECRET (loadgen mints its own tokens).
    #[arg(long, env = "COMMERCE_JWT_SECRET")]
    pub jwt_secret: String,
    #[arg(long, value_enum)]
    pub scenario: ScenarioName,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent connections (each a closed loop: one request in flight).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long duration-bound scenarios run.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Users racing in coupon-rush and order-hot.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Coupons in coupon-rush, units of the hot product in order-hot.
    #[arg(long, default_value_t = 1_000)]
    pub limited: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendName {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["sqlite", "postgres"])]
    pub backends: Vec<BackendName>,
    /// The server binary (default: `commerce` beside this executable).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// A PostgreSQL database the bench may create databases from.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_url: String,
    /// Where the markdown report is written.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    #[command(flatten)]
    pub load: LoadArgs,
}
