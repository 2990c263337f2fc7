//! Prometheus metrics: per-route request counts and latency histograms, recorded by middleware,
//! and the help text of every metric the service records (`promtool check metrics` wants one).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Writes per committed batch, up to `COMMERCE_WRITE_BATCH`'s largest value: a histogram, so
/// dashboards can take `histogram_quantile` of it (without buckets it would be a summary).
const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Every metric the service records, with its help text. The histograms are the `_seconds`
/// ones (buckets above) and `db_write_batch_size`.
const HELP: &[(&str, &str)] = &[
    ("http_requests_total", "HTTP requests answered, by method, matched route and status"),
    ("http_request_duration_seconds", "Time to answer an HTTP request, by method, matched route and status"),
    ("http_request_timeouts_total", "Requests answered 503 because COMMERCE_REQUEST_TIMEOUT passed"),
    ("db_pool_connections", "Database pool connections by pool and state: open, idle, max (the pool's limit); sampled at scrape time"),
    ("db_write_batch_size", "Writes committed together in one batch"),
    ("db_write_batch_max", "Most writes one batch may hold (COMMERCE_WRITE_BATCH); sampled at scrape time"),
    ("db_write_queue_seconds", "Time a write waited in the queue before its batch started"),
    ("db_write_queue_length", "Writes waiting for a batch; sampled at scrape time"),
    ("db_write_queue_capacity", "Writes the queue admits before refusing new ones (what commits within the deadline at the recent pace); sampled at scrape time"),
    ("db_write_batches_total", "Write batches run"),
    ("db_commits_total", "Write transactions committed"),
    ("db_transaction_retries_total", "Write transactions run again after a transient failure"),
    ("db_writes_not_started_total", "Writes answered 503 without being started, by reason: queue_full, deadline, caller_gone"),
    ("db_writes_failing", "1 while writes fail (storage refused them, or writes wait and none committed for 2 s): /health/ready answers 503; sampled at scrape time"),
    ("db_wal_bytes_total", "SQLite: bytes of write-ahead log written by commits (pages with their frame headers)"),
    ("db_replica_reads_total", "Reads that may trail the primary, by who served them: replica or primary"),
    ("outbox_backlog", "Order events waiting in the outbox for delivery; sampled at scrape time"),
    ("outbox_delivered_total", "Order events delivered from the outbox"),
    ("outbox_delivery_failures_total", "Outbox delivery passes that failed (events wait and are retried)"),
    ("platform_events_applied_total", "Order events added to the sales statistics"),
    ("platform_events_duplicate_total", "Order events received again and ignored"),
    ("platform_events_rejected_total", "Unreadable order events dropped"),
    ("daily_sales_runs_total", "Days whose sales the daily job stored"),
    ("daily_sales_last_success_timestamp_seconds", "When (unix seconds) the daily job last found every due day stored; 0 before it has"),
    ("orders_placed_total", "Orders placed and paid"),
    ("orders_failed_total", "Orders refused, by the problem's code"),
    ("orders_cancelled_total", "Orders cancelled and refunded"),
    ("order_cancels_failed_total", "Cancellations refused, by the problem's code"),
    ("coupon_issue_total", "Coupon issue requests by outcome: ISSUED or the problem's code"),
    ("idempotent_replays_total", "Requests answered from a stored answer of the same Idempotency-Key"),
];

/// How this service's metrics are exported (public for tests, which give each test server a
/// recorder of its own built like this one).
pub fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
        .expect("buckets are not empty")
        .set_buckets_for_metric(
            Matcher::Full("db_write_batch_size".to_owned()),
            BATCH_SIZE_BUCKETS,
        )
        .expect("buckets are not empty")
}

/// The process-wide recorder (the `metrics` facade has one global recorder).
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = builder()
                .install_recorder()
                .expect("no other metrics recorder is installed");
            for (name, help) in HELP {
                // The facade's describe macros take the help text; the kind does not matter to
                // this exporter, which keys descriptions by name.
                metrics::describe_counter!(*name, *help);
            }
            handle
        })
        .clone()
}

pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
