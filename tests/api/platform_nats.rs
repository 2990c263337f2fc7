//! The JetStream path against real NATS servers: the shared one on 127.0.0.1:4222, and a
//! private one a test starts and stops to make NATS unavailable for a while.
//!
//! These tests fail when NATS is missing. Built with `COMMERCE_TEST_SKIP_NATS=1` they are
//! compiled as ignored (see build.rs), so a run without NATS reports them as ignored, never as
//! passed.

use crate::harness::{postgres_available, Backend, TestApp};
use crate::platform::{buy, popular, ranking};
use commerce::config::Settings;
use commerce::events::jetstream::JetStream;
use commerce::outbox::{self, Transport};
use futures::TryStreamExt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const SHARED_NATS: &str = "127.0.0.1:4222";
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// `on_both_backends!` for tests that need NATS. A twin of the harness's macro because that
/// one cannot take the `ignore` attribute.
#[macro_export]
macro_rules! with_nats_on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::with_nats_on_both_backends!(@on sqlite Sqlite $($name),*);
        $crate::with_nats_on_both_backends!(@on postgres Postgres $($name),*);
    };
    (@on $module:ident $backend:ident $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[cfg_attr(skip_nats_tests, ignore = "built with COMMERCE_TEST_SKIP_NATS=1")]
                async fn $name() {
                    $crate::platform_nats::with_nats(
                        super::$name,
                        $crate::harness::Backend::$backend,
                    )
                    .await
                }
            )*
        }
    };
}

/// Runs `test` once NATS is known to be there, failing with what to do when it is not.
pub async fn with_nats<F: Future<Output = ()>>(test: impl FnOnce(Backend) -> F, backend: Backend) {
    let shared = tokio::net::TcpStream::connect(SHARED_NATS).await;
    assert!(
        shared.is_ok() && std::path::Path::new(NATS_SERVER).exists(),
        "this test needs NATS with JetStream at {SHARED_NATS} ({shared:?}) and the binary \
         {NATS_SERVER}; start them, or build the tests with COMMERCE_TEST_SKIP_NATS=1 to list \
         the NATS tests as ignored"
    );
    if backend == Backend::Postgres && !postgres_available().await {
        return;
    }
    test(backend).await
}

pub fn nats_settings(url: &str) -> Settings {
    Settings {
        popular_cache_ttl: Duration::ZERO,
        nats_url: Some(url.to_owned()),
        nats_stream: format!("T{:016X}", rand::random::<u64>()),
        ..crate::harness::settings()
    }
}

/// The relay and the platform's consumer, as `serve` runs them.
pub fn start_pipeline(app: &TestApp, transport: Arc<Transport>) -> CancellationToken {
    let shutdown = CancellationToken::new();
    tokio::spawn(outbox::relay(
        app.state.relay(),
        transport.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(commerce::platform::consume_jetstream(
        app.state.platform(),
        transport.jetstream(),
        shutdown.clone(),
    ));
    shutdown
}

/// Polls until `check` holds, failing with its last answer after `within`.
pub async fn eventually<T: std::fmt::Debug, F: Future<Output = T>>(
    within: Duration,
    mut read: impl FnMut() -> F,
    check: impl Fn(&T) -> bool,
) {
    let started = Instant::now();
    loop {
        let seen = read().await;
        if check(&seen) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "still {seen:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_for_ranking(app: &TestApp, expected: Vec<(i64, i64)>, within: Duration) {
    eventually(
        within,
        || async { ranking(&popular(app).await) },
        |seen| *seen == expected,
    )
    .await
}

pub async fn undelivered(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
        .await
}

/// Makes JetStream deliver every message in the stream to the platform again: deletes the
/// platform's durable consumer, then waits until the consumer loop has created it anew and it
/// has acknowledged (so applied) every message once more. Returns how many messages that was.
pub async fn redeliver_the_stream(nats: &JetStream) -> u64 {
    let stream = nats.context().get_stream(nats.stream()).await.unwrap();
    let messages = stream.get_info().await.unwrap().state.last_sequence;
    let names: Vec<String> = stream.consumer_names().try_collect().await.unwrap();
    assert_eq!(names.len(), 1, "the platform's consumer: {names:?}");
    stream.delete_consumer(&names[0]).await.unwrap();
    eventually(
        Duration::from_secs(10),
        || stream.consumer_info(&names[0]),
        |info| {
            info.as_ref()
                .is_ok_and(|i| i.ack_floor.stream_sequence == messages && i.num_ack_pending == 0)
        },
    )
    .await;
    messages
}

async fn orders_reach_the_platform_through_jetstream_once(backend: Backend) {
    let settings = nats_settings(&format!("nats://{SHARED_NATS}"));
    let (app, transport, shutdown) = on_nats(backend, settings).await;
    let nats = transport.jetstream().unwrap();
    let a = app.product("A", 100, 100).await;
    let b = app.product("B", 100, 100).await;
    buy(&app, 1, a, 2).await;
    buy(&app, 2, b, 3).await;
    let expected = vec![(b, 3), (a, 2)];
    wait_for_ranking(&app, expected.clone(), Duration::from_secs(10)).await;

    // Publishing every event again adds nothing to the stream: JetStream drops duplicate ids.
    app.execute("UPDATE outbox SET delivered_at = NULL").await;
    app.state.outbox.notify();
    eventually(Duration::from_secs(10), || undelivered(&app), |n| *n == 0).await;
    // The consumer's own key is what keeps a message JetStream does deliver twice from counting
    // twice: every message goes to it a second time, and the figures stay exact.
    assert_eq!(redeliver_the_stream(&nats).await, 2, "no duplicate stored");
    assert_eq!(ranking(&popular(&app).await), expected);
    shutdown.cancel();
    let _ = nats.context().delete_stream(nats.stream()).await;
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A NATS server of the test's own, with JetStream storage in a temporary directory.
/// A private NATS server, the app on it and its relay and consumer running.
pub async fn on_private_nats(
    backend: Backend,
) -> (PrivateNats, TestApp, Arc<Transport>, CancellationToken) {
    let port = free_port();
    let nats = PrivateNats::start(port, tempfile::tempdir().unwrap()).await;
    let settings = nats_settings(&format!("nats://127.0.0.1:{port}"));
    let (app, transport, shutdown) = on_nats(backend, settings).await;
    (nats, app, transport, shutdown)
}

/// The app with `settings` (a NATS URL among them), its relay and consumer running.
pub async fn on_nats(
    backend: Backend,
    settings: Settings,
) -> (TestApp, Arc<Transport>, CancellationToken) {
    let app = TestApp::with_settings(backend, settings).await;
    let transport = Arc::new(app.state.settings.transport().await.unwrap());
    let shutdown = start_pipeline(&app, transport.clone());
    (app, transport, shutdown)
}

pub struct PrivateNats {
    child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateNats {
    pub async fn start(port: u16, dir: tempfile::TempDir) -> PrivateNats {
        let child = tokio::process::Command::new(NATS_SERVER)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server starts");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return PrivateNats { child, port, dir };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the private nats-server did not listen");
    }

    /// Stops the server; returns its port and store directory.
    pub async fn stop(mut self) -> (u16, tempfile::TempDir) {
        self.child.kill().await.unwrap();
        (self.port, self.dir)
    }
}

async fn orders_succeed_while_nats_is_down_and_their_events_follow_when_it_returns(
    backend: Backend,
) {
    let (nats, app, _, shutdown) = on_private_nats(backend).await;
    let a = app.product("A", 100, 100).await;
    buy(&app, 1, a, 1).await;
    wait_for_ranking(&app, vec![(a, 1)], Duration::from_secs(10)).await;

    let (port, dir) = nats.stop().await;
    buy(&app, 2, a, 2).await;
    buy(&app, 3, a, 3).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(undelivered(&app).await, 2, "events wait in the outbox");
    assert_eq!(ranking(&popular(&app).await), vec![(a, 1)]);

    let nats = PrivateNats::start(port, dir).await;
    wait_for_ranking(&app, vec![(a, 6)], Duration::from_secs(20)).await;
    assert_eq!(undelivered(&app).await, 0);
    shutdown.cancel();
    nats.stop().await;
}

crate::with_nats_on_both_backends!(
    orders_reach_the_platform_through_jetstream_once,
    orders_succeed_while_nats_is_down_and_their_events_follow_when_it_returns,
);
