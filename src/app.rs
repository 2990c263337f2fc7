//! The one place that wires things together: state, router, background tasks, serving.

use anyhow::Context;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{LogFormat, ServeArgs, Settings};
use crate::http::{self, JwtKeys};
use crate::ids::UserId;
use crate::store::{self, Batching, Db};
use crate::telemetry::Traces;
use crate::{coupon, demo, idempotency, outbox, platform, product};

/// Everything a request handler can reach.
pub struct AppState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub jwt: JwtKeys,
    pub metrics: PrometheusHandle,
    pub outbox: outbox::Signal,
    pub platform: platform::Platform,
    pub sold_out_coupons: coupon::SoldOut,
    pub products: product::ProductCache,
    pub write_limiter: http::WriteLimiter,
}

impl AppState {
    pub fn new(
        db: Db,
        settings: Settings,
        jwt_secret: &str,
        clock: Arc<dyn Clock>,
    ) -> Arc<AppState> {
        let platform = platform::Platform::new(settings.popular_cache_ttl);
        let products = product::ProductCache::new(settings.product_cache_ttl);
        let write_limiter = http::WriteLimiter::new(settings.user_write_quota);
        Arc::new(AppState {
            db,
            clock,
            settings,
            jwt: JwtKeys::new(jwt_secret),
            metrics: http::metrics_recorder(),
            outbox: outbox::Signal::default(),
            platform,
            sold_out_coupons: coupon::SoldOut::default(),
            products,
            write_limiter,
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        http::router(self.clone())
    }
}

/// `commerce serve`: migrate, start the background work, serve until SIGTERM or Ctrl-C.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let traces = Traces::from_env()?;
    init_tracing(args.log_format, traces.as_ref());
    // Before anything records: series registered at start (at 0) are lost without a recorder.
    http::metrics_recorder();
    let secret = match (&args.jwt_secret, args.demo) {
        (Some(secret), _) => secret.clone(),
        (None, true) => demo::random_secret(),
        (None, false) => anyhow::bail!("COMMERCE_JWT_SECRET is not set (or run with --demo)"),
    };
    check_secrets(&secret, args.jwt_previous_secret.as_deref())?;
    let nofile = http::server::raise_open_file_limit();
    let edge = http::server::Edge::new(&args.edge, nofile);
    // A write answered 503 by the request timeout must never start afterwards.
    let batching = Batching {
        deadline: args.edge.request_timeout.min(store::WRITE_DEADLINE),
        ..args.database.batching()
    };
    let db = store::connect_batched(
        &args.database.database_url,
        args.read_database_url.as_deref(),
        args.database.db_max_connections,
        batching,
    )
    .await
    .context("connecting to the database")?;
    db.migrate().await.context("applying the schema")?;
    let mut state = AppState::new(
        db.clone(),
        args.settings.clone().into(),
        &secret,
        Arc::new(SystemClock),
    );
    if let Some(previous) = &args.jwt_previous_secret {
        Arc::get_mut(&mut state)
            .expect("the state is not shared before serving starts")
            .jwt
            .accept_previous(previous);
    }
    if args.demo {
        demo::load(&state).await.context("loading demo data")?;
    }

    let shutdown = CancellationToken::new();
    let transport = Arc::new(outbox::Transport::from_settings(&state.settings).await?);
    let background = vec![
        tokio::spawn(outbox::relay(
            state.clone(),
            transport.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(platform::consume_jetstream(
            state.clone(),
            transport.jetstream(),
            shutdown.clone(),
        )),
        tokio::spawn(platform::daily_job(state.clone(), shutdown.clone())),
        tokio::spawn(housekeeping(state.clone(), shutdown.clone())),
    ];

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        database = db.backend().name(),
        open_files = nofile,
        max_connections = edge.max_connections,
        "commerce is serving"
    );
    if args.demo {
        demo::print_welcome(&state, args.listen);
    }
    let app = http::server::with_deadlines(state.router(), &edge);
    http::server::serve(listener, app, edge, shutdown_signal()).await;

    tracing::info!("draining background work");
    shutdown.cancel();
    for task in background {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    db.close().await;
    if let Some(traces) = traces {
        if let Err(error) = traces.shutdown().await {
            tracing::warn!(%error, "traces were not all exported");
        }
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Refuses secrets too short for HS256 (the message never shows a secret).
fn check_secrets(current: &str, previous: Option<&str>) -> anyhow::Result<()> {
    if let Some(problem) = http::auth::weak_secret(current) {
        anyhow::bail!("COMMERCE_JWT_SECRET {problem}");
    }
    if let Some(problem) = previous.and_then(http::auth::weak_secret) {
        anyhow::bail!("COMMERCE_JWT_PREVIOUS_SECRET {problem}");
    }
    Ok(())
}

/// Prunes expired idempotency keys and delivered outbox events; keeps histograms bounded.
async fn housekeeping(state: Arc<AppState>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        state.metrics.run_upkeep();
        let now = state.clock.now();
        let pruned = state
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let keys = idempotency::prune(conn, now).await?;
                    let events = outbox::prune(conn, now).await?;
                    Ok::<_, crate::store::StoreError>((keys, events))
                })
            })
            .await;
        match pruned {
            Ok((keys, events)) if keys + events > 0 => tracing::info!(keys, events, "pruned"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "housekeeping failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}

/// Logs to stderr as `RUST_LOG` filters them; spans to OTLP too when `traces` is on (filtered
/// on their own, so a quieter log does not thin the traces).
fn init_tracing(format: LogFormat, traces: Option<&Traces>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs.json().boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces.map(Traces::layer))
        .try_init();
}

/// Mints a token for the CLI and the demo.
pub fn token(secret: &str, user: UserId, admin: bool, ttl: Duration) -> String {
    JwtKeys::new(secret).mint(user, admin, ttl)
}
