//! The connection side of the HTTP edge: an accept loop that caps concurrent connections below
//! the open-file limit, survives running out of descriptors, serves HTTP/1.1 with a deadline
//! for request heads (which also closes idle keep-alive connections), and drains in-flight
//! requests on shutdown. Request bodies must keep arriving and every request has a deadline.

use axum::error_handling::HandleErrorLayer;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::timeout::RequestBodyTimeoutLayer;

use super::problem::{ErrorCode, Problem};

/// The edge's timeouts as configured.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub request: Duration,
}

/// Timeouts and the connection cap, as the server runs with them.
#[derive(Debug, Clone)]
pub struct Edge {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl Edge {
    /// These timeouts, with the connection cap (`None`: as many as fit) fitted under the
    /// open-file limit (`nofile`).
    pub fn new(timeouts: Timeouts, max_connections: Option<u64>, nofile: u64) -> Edge {
        let ceiling = connection_ceiling(nofile);
        let wanted = max_connections.unwrap_or(ceiling);
        if wanted > ceiling {
            tracing::warn!(
                wanted,
                ceiling,
                nofile,
                "COMMERCE_MAX_CONNECTIONS is above what the open-file limit allows; using the ceiling"
            );
        }
        Edge {
            header_timeout: timeouts.header,
            body_timeout: timeouts.body,
            request_timeout: timeouts.request,
            max_connections: wanted.min(ceiling).max(1) as usize,
        }
    }
}

/// Connections may take all descriptors but a tenth (at least 64): the database pools, log
/// output, the runtime and the listener itself need some too.
fn connection_ceiling(nofile: u64) -> u64 {
    nofile.saturating_sub((nofile / 10).max(64)).max(1)
}

/// Raises the soft open-file limit to the hard one; returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-file limit");
            rlimit::Resource::NOFILE
                .get()
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    }
}

/// The router with the request deadlines of the edge: a body that pauses longer than
/// `body_timeout` fails to read (400), and a request unanswered after `request_timeout` is
/// `503 UNAVAILABLE`.
pub fn with_deadlines(router: Router, edge: &Edge) -> Router {
    // Shown as 0 until a request times out, so the rate can be graphed from the start.
    metrics::counter!("http_request_timeouts_total").increment(0);
    router
        .layer(RequestBodyTimeoutLayer::new(edge.body_timeout))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overdue))
                .timeout(edge.request_timeout),
        )
}

async fn overdue(error: tower::BoxError) -> Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        metrics::counter!("http_request_timeouts_total").increment(1);
        tracing::warn!("a request ran past the server's deadline");
        Problem::new(
            ErrorCode::Unavailable,
            "the request ran past the server's deadline; retry shortly",
        )
        .into_response()
    } else {
        tracing::error!(%error, "request failed in the edge middleware");
        Problem::internal().into_response()
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets in-flight
/// requests finish (at most `request_timeout` more) and closes idle connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    edge: Edge,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(edge.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(edge.header_timeout)
        .keep_alive(true);
    let mut backoff = Backoff::default();
    tokio::pin!(shutdown);
    loop {
        // A permit first: at the cap, new connections wait in the kernel's backlog instead of
        // taking descriptors the server needs.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    backoff.after(error).await;
                    continue;
                }
            },
        };
        backoff.reset();
        let _ = stream.set_nodelay(true);
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(edge.request_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still busy after the drain deadline; closing them");
    }
}

/// Accept errors: a connection reset before it was accepted is that client's problem; anything
/// else (out of descriptors, out of memory) is waited out with a growing pause, so the loop
/// neither spins nor dies, and logged at most once a second.
#[derive(Default)]
struct Backoff {
    pause: Option<Duration>,
    last_logged: Option<Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MOST: Duration = Duration::from_millis(500);

    async fn after(&mut self, error: io::Error) {
        use io::ErrorKind::*;
        if matches!(
            error.kind(),
            ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
        ) {
            return;
        }
        if self
            .last_logged
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(%error, "accept failed; retrying");
            self.last_logged = Some(Instant::now());
        }
        let pause = self.pause.map_or(Self::FIRST, |p| (p * 2).min(Self::MOST));
        self.pause = Some(pause);
        tokio::time::sleep(pause).await;
    }

    fn reset(&mut self) {
        self.pause = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    fn edge(request_timeout: Duration) -> Edge {
        Edge {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout,
            max_connections: 10,
        }
    }

    #[test]
    fn connections_stay_below_the_open_file_limit() {
        assert_eq!(connection_ceiling(1024), 922);
        assert_eq!(connection_ceiling(20_000), 18_000);
        assert_eq!(connection_ceiling(100), 36);
        assert_eq!(connection_ceiling(10), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn accept_errors_back_off_unless_only_that_client_failed() {
        let mut backoff = Backoff::default();
        let started = tokio::time::Instant::now();
        backoff
            .after(io::Error::from(io::ErrorKind::ConnectionAborted))
            .await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        let emfile = || io::Error::from_raw_os_error(24); // Too many open files
        let mut pauses = Vec::new();
        for _ in 0..8 {
            let before = tokio::time::Instant::now();
            backoff.after(emfile()).await;
            pauses.push(before.elapsed().as_millis());
        }
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 500, 500]);
        backoff.reset();
        let before = tokio::time::Instant::now();
        backoff.after(emfile()).await;
        assert_eq!(before.elapsed(), Duration::from_millis(10));
    }

    #[tokio::test]
    async fn a_request_past_the_deadline_is_unavailable_with_retry_after() {
        let slow = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "done"
            }),
        );
        let app = with_deadlines(slow, &edge(Duration::from_millis(50)));
        let response = app
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["code"], "UNAVAILABLE");
    }
}
