//! Settings from flags and environment variables (`COMMERCE_*`).

use chrono::NaiveTime;
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::http::server::{Edge, Timeouts};
use crate::http::WriteQuota;
use crate::money::{Won, MAX_SETTING};
use crate::outbox::Transport;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://commerce.db";

#[derive(Debug, Parser)]
#[command(
    name = "commerce",
    version,
    about = "E-commerce backend: balance, products, coupons, orders, data platform"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server, the outbox relay and the daily sales job.
    Serve(Box<ServeArgs>),
    /// Apply the database schema and exit.
    Migrate(DatabaseArgs),
    /// Print a signed token for development.
    Token(TokenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://...`.
    #[arg(long, env = "COMMERCE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Maximum database connections (per pool).
    #[arg(long, env = "COMMERCE_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// Most writes committed together in one transaction (1: each on its own).
    #[arg(long, env = "COMMERCE_WRITE_BATCH", default_value_t = crate::store::DEFAULT_MAX_BATCH, value_parser = parse_batch)]
    pub write_batch: usize,
    /// PostgreSQL: batches decided and committed at once (SQLite has one writer: always 1).
    #[arg(long, env = "COMMERCE_WRITE_COMMITTERS", default_value_t = crate::store::DEFAULT_COMMITTERS, value_parser = parse_committers)]
    pub write_committers: usize,
}

impl DatabaseArgs {
    pub fn batching(&self) -> crate::store::Batching {
        crate::store::Batching {
            max_batch: self.write_batch,
            committers: self.write_committers,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// PostgreSQL streaming replica of the database, for reads that may trail it: catalogue,
    /// popular products, coupon campaigns, statistics.
    #[arg(long, env = "COMMERCE_READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "COMMERCE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// HS256 secret for tokens, at least 32 bytes. Required unless `--demo`.
    #[arg(long, env = "COMMERCE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The secret used before the current one: tokens it signed are still accepted (never
    /// minted), so keys can be rotated without logging everyone out.
    #[arg(long, env = "COMMERCE_JWT_PREVIOUS_SECRET", hide_env_values = true)]
    pub jwt_previous_secret: Option<String>,
    /// Load demo products and coupons and print ready-made tokens.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(flatten)]
    pub edge: EdgeArgs,
    /// Log format: `text` or `json`.
    #[arg(long, env = "COMMERCE_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct SettingsArgs {
    /// The shop's time zone: calendar days, the popular-products window and the daily job.
    #[arg(long, env = "COMMERCE_TIME_ZONE", default_value = "Asia/Seoul", value_parser = parse_tz)]
    pub time_zone: Tz,
    /// Largest single charge, in won (1 to 10^15).
    #[arg(long, env = "COMMERCE_MAX_CHARGE", default_value_t = 1_000_000, value_parser = parse_money_setting)]
    pub max_charge: i64,
    /// Largest balance a user may hold, in won (1 to 10^15).
    #[arg(long, env = "COMMERCE_MAX_BALANCE", default_value_t = 100_000_000, value_parser = parse_money_setting)]
    pub max_balance: i64,
    /// How long after placing it a user may cancel an order (admins have no limit).
    #[arg(long, env = "COMMERCE_ORDER_CANCEL_WINDOW", default_value = "7days", value_parser = humantime::parse_duration)]
    pub order_cancel_window: Duration,
    /// Local time of day at which the daily sales job runs.
    #[arg(long, env = "COMMERCE_DAILY_JOB_AT", default_value = "00:05", value_parser = parse_time)]
    pub daily_job_at: NaiveTime,
    /// How long a popular-products answer is reused.
    #[arg(long, env = "COMMERCE_POPULAR_CACHE_TTL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub popular_cache_ttl: Duration,
    /// How long a product's details are reused by reads (this instance's own writes refresh
    /// them at once).
    #[arg(long, env = "COMMERCE_PRODUCT_CACHE_TTL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub product_cache_ttl: Duration,
    /// Writes one user may make per second on this instance (charges, coupon issues, orders,
    /// cancels); `0` turns the limit off.
    #[arg(long, env = "COMMERCE_USER_WRITES_PER_SECOND", default_value_t = 10)]
    pub user_writes_per_second: u32,
    /// Writes one user may make at once before the per-second rate applies.
    #[arg(long, env = "COMMERCE_USER_WRITE_BURST", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub user_write_burst: u32,
    /// Webhooks may be sent to loopback and private addresses (receivers on the shop's own
    /// network); link-local and cloud-metadata addresses are refused regardless.
    #[arg(long, env = "COMMERCE_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// NATS server for order events (JetStream). Without it events are delivered in-process.
    #[arg(long, env = "COMMERCE_NATS_URL")]
    pub nats_url: Option<String>,
    /// JetStream stream and subject prefix for order events.
    #[arg(long, env = "COMMERCE_NATS_STREAM", default_value = "COMMERCE")]
    pub nats_stream: String,
    /// Copies JetStream keeps of the stream when it creates it (a cluster of 3 takes 3).
    #[arg(long, env = "COMMERCE_NATS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: u8,
}

/// Timeouts and limits at the HTTP edge.
#[derive(Debug, Clone, Args)]
pub struct EdgeArgs {
    /// A connection must deliver a complete request head within this time of opening or of
    /// its previous response, so idle keep-alive connections are closed after it too.
    #[arg(long, env = "COMMERCE_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub header_timeout: Duration,
    /// Longest pause allowed while a request body arrives.
    #[arg(long, env = "COMMERCE_BODY_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub body_timeout: Duration,
    /// A request not answered within this time is answered `503 UNAVAILABLE`.
    #[arg(long, env = "COMMERCE_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    pub request_timeout: Duration,
    /// Most connections served at once (default and ceiling: the open-file limit less a
    /// reserve for the database, logs and the runtime).
    #[arg(long, env = "COMMERCE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
}

impl EdgeArgs {
    /// The edge as served, its connection cap fitted under the open-file limit (`nofile`).
    pub fn edge(&self, nofile: u64) -> Edge {
        let timeouts = Timeouts {
            header: self.header_timeout,
            body: self.body_timeout,
            request: self.request_timeout,
        };
        Edge::new(timeouts, self.max_connections, nofile)
    }
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub user: i64,
    /// Add `role: "admin"`.
    #[arg(long)]
    pub admin: bool,
    /// Lifetime, e.g. `24h`, `30m`.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    #[arg(long, env = "COMMERCE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
}

fn parse_tz(raw: &str) -> Result<Tz, String> {
    raw.parse::<Tz>()
        .map_err(|_| format!("unknown time zone `{raw}` (use an IANA name such as Asia/Seoul)"))
}

fn parse_timeout(raw: &str) -> Result<Duration, String> {
    match humantime::parse_duration(raw) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("a timeout must be longer than zero".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

fn parse_batch(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!("expected 1 to 1024 writes per batch, got `{raw}`")),
    }
}

fn parse_committers(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n @ 1..=64) => Ok(n),
        _ => Err(format!("expected 1 to 64 committers, got `{raw}`")),
    }
}

fn parse_money_setting(raw: &str) -> Result<i64, String> {
    match raw.parse::<i64>() {
        Ok(won) if (1..=MAX_SETTING.get()).contains(&won) => Ok(won),
        _ => Err(format!(
            "expected 1 to {} won (10^15, so that no sum of money can overflow), got `{raw}`",
            MAX_SETTING.get()
        )),
    }
}

fn parse_time(raw: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(raw, "%H:%M").map_err(|_| format!("expected HH:MM, got `{raw}`"))
}

/// The business settings the running service reads.
#[derive(Debug, Clone)]
pub struct Settings {
    pub time_zone: Tz,
    pub max_charge: Won,
    pub max_balance: Won,
    pub order_cancel_window: Duration,
    /// `None`: writes are not limited.
    pub user_write_quota: Option<WriteQuota>,
    pub daily_job_at: NaiveTime,
    pub popular_cache_ttl: Duration,
    pub product_cache_ttl: Duration,
    pub webhook_allow_private: bool,
    pub nats_url: Option<String>,
    pub nats_stream: String,
    pub nats_replicas: u8,
}

impl Default for Settings {
    /// The documented defaults, independent of the environment (tests rely on that).
    fn default() -> Self {
        Settings {
            time_zone: chrono_tz::Asia::Seoul,
            max_charge: Won(1_000_000),
            max_balance: Won(100_000_000),
            order_cancel_window: Duration::from_secs(7 * 24 * 3600),
            user_write_quota: Some(WriteQuota {
                per_second: NonZeroU32::new(10).expect("not zero"),
                burst: NonZeroU32::new(20).expect("not zero"),
            }),
            daily_job_at: NaiveTime::from_hms_opt(0, 5, 0).expect("valid time"),
            popular_cache_ttl: Duration::from_secs(1),
            product_cache_ttl: Duration::from_secs(1),
            webhook_allow_private: false,
            nats_url: None,
            nats_stream: "COMMERCE".to_owned(),
            nats_replicas: 1,
        }
    }
}

impl Settings {
    /// Where the outbox relay sends events: NATS JetStream when `nats_url` is set, else
    /// straight to the consumer in this process.
    pub async fn transport(&self) -> anyhow::Result<Transport> {
        let nats = self.nats_url.as_deref();
        Transport::connect(nats, &self.nats_stream, self.nats_replicas).await
    }
}

impl From<SettingsArgs> for Settings {
    fn from(args: SettingsArgs) -> Self {
        Settings {
            time_zone: args.time_zone,
            max_charge: Won(args.max_charge),
            max_balance: Won(args.max_balance),
            order_cancel_window: args.order_cancel_window,
            user_write_quota: NonZeroU32::new(args.user_writes_per_second).map(|per_second| {
                WriteQuota {
                    per_second,
                    burst: NonZeroU32::new(args.user_write_burst).expect("parsed as 1.."),
                }
            }),
            daily_job_at: args.daily_job_at,
            popular_cache_ttl: args.popular_cache_ttl,
            product_cache_ttl: args.product_cache_ttl,
            webhook_allow_private: args.webhook_allow_private,
            nats_url: args.nats_url,
            nats_stream: args.nats_stream,
            nats_replicas: args.nats_replicas,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_settings(flags: &[&str]) -> Settings {
        let cli = Cli::try_parse_from(["commerce", "serve"].iter().chain(flags)).expect("parses");
        match cli.command {
            Command::Serve(serve) => serve.settings.into(),
            _ => unreachable!("a serve command"),
        }
    }

    #[test]
    fn the_write_limit_flags_default_to_the_documented_quota() {
        assert_eq!(
            serve_settings(&[]).user_write_quota,
            Settings::default().user_write_quota
        );
        let quota = serve_settings(&["--user-writes-per-second", "3", "--user-write-burst", "7"])
            .user_write_quota
            .expect("on");
        assert_eq!((quota.per_second.get(), quota.burst.get()), (3, 7));
    }

    #[test]
    fn zero_writes_per_second_turns_the_limit_off() {
        assert_eq!(
            serve_settings(&["--user-writes-per-second", "0"]).user_write_quota,
            None
        );
        assert!(Cli::try_parse_from(["commerce", "serve", "--user-write-burst", "0"]).is_err());
    }

    #[test]
    fn private_webhook_receivers_are_refused_unless_allowed() {
        assert!(!serve_settings(&[]).webhook_allow_private);
        assert!(serve_settings(&["--webhook-allow-private"]).webhook_allow_private);
    }

    #[test]
    fn the_write_batch_is_bounded() {
        for (raw, ok) in [("1", true), ("1024", true), ("0", false), ("1025", false)] {
            let parsed = Cli::try_parse_from(["commerce", "serve", "--write-batch", raw]);
            assert_eq!(parsed.is_ok(), ok, "{raw}");
        }
        for (raw, ok) in [("1", true), ("64", true), ("0", false), ("65", false)] {
            let parsed = Cli::try_parse_from(["commerce", "serve", "--write-committers", raw]);
            assert_eq!(parsed.is_ok(), ok, "{raw}");
        }
    }

    #[test]
    fn money_settings_are_at_most_ten_to_the_fifteen() {
        for flag in ["--max-charge", "--max-balance"] {
            for (raw, ok) in [
                ("1", true),
                ("1000000000000000", true),
                ("1000000000000001", false),
                ("9223372036854775807", false),
                ("0", false),
                ("-5", false),
            ] {
                let flag_and_value = format!("{flag}={raw}");
                let parsed = Cli::try_parse_from(["commerce", "serve", &flag_and_value]);
                assert_eq!(parsed.is_ok(), ok, "{flag} {raw}");
                if let Err(error) = parsed {
                    assert!(error.to_string().contains("10^15"), "{error}");
                }
            }
        }
        let settings = serve_settings(&["--max-charge", "1000000000000000"]);
        assert_eq!(settings.max_charge, MAX_SETTING);
    }
}
