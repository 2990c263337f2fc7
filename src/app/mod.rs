//! The one place that wires things together: state, router, background tasks, serving.

mod background;
pub mod demo;
mod errors;
mod ops;
mod routes;
mod state;

pub use routes::openapi;
pub use state::AppState;

use anyhow::Context;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::SystemClock;
use crate::config::{LogFormat, ServeArgs};
use crate::http::{self, JwtKeys};
use crate::ids::UserId;
use crate::store::{self, Batching};
use crate::telemetry::Traces;

impl AppState {
    pub fn router(self: &Arc<Self>) -> Router {
        routes::router(self.clone())
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
    let edge = args.edge.edge(nofile);
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
    let background = background::start(&state, shutdown.clone()).await?;

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
