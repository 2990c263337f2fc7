//! Operational endpoints: liveness, readiness, metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use std::sync::Arc;

use super::state::AppState;
use crate::http::{ErrorCode, Problem};
use crate::outbox;

/// The process is up.
pub async fn live() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// The database answers and takes writes.
pub async fn ready(State(app): State<Arc<AppState>>) -> Result<impl IntoResponse, Problem> {
    match app.db.ready().await {
        Ok(()) => Ok(Json(
            json!({"status": "ok", "database": app.db.backend().name()}),
        )),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            Err(Problem::new(
                ErrorCode::Unavailable,
                "the database is not reachable or does not take writes",
            ))
        }
    }
}

/// Prometheus text exposition. Gauges are sampled at scrape time.
pub async fn metrics(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    for stats in app.db.pool_stats() {
        let pool = stats.name;
        metrics::gauge!("db_pool_connections", "pool" => pool, "state" => "open")
            .set(stats.open as f64);
        metrics::gauge!("db_pool_connections", "pool" => pool, "state" => "idle")
            .set(stats.idle as f64);
        metrics::gauge!("db_pool_connections", "pool" => pool, "state" => "max")
            .set(stats.max as f64);
    }
    let queue = app.db.write_queue();
    metrics::gauge!("db_write_queue_length").set(queue.waiting as f64);
    metrics::gauge!("db_write_queue_capacity").set(queue.capacity as f64);
    metrics::gauge!("db_write_batch_max").set(queue.max_batch as f64);
    metrics::gauge!("db_writes_failing").set(if app.db.writes_failing() { 1.0 } else { 0.0 });
    match outbox::backlog(&app.db).await {
        Ok(pending) => metrics::gauge!("outbox_backlog").set(pending as f64),
        Err(error) => tracing::warn!(%error, "could not measure the outbox backlog"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}
