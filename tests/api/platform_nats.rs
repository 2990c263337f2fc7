//! The JetStream path against real NATS servers: the shared one on 127.0.0.1:4222, and a
//! private one this test starts and stops to make NATS unavailable for a while.

use crate::harness::{Backend, TestApp};
use crate::on_both_backends;
use crate::platform::{buy, popular, ranking};
use commerce::config::Settings;
use commerce::outbox::{self, Transport};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SHARED_NATS: &str = "127.0.0.1:4222";
const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// NATS must be there under CI; elsewhere its tests skip with a message.
async fn nats_available() -> bool {
    let reachable = tokio::net::TcpStream::connect(SHARED_NATS).await.is_ok()
        && std::path::Path::new(NATS_SERVER).exists();
    if !reachable {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "NATS must be available in CI"
        );
        eprintln!("skipping a NATS test: no NATS server at {SHARED_NATS} or no {NATS_SERVER}");
    }
    reachable
}

fn nats_settings(url: &str) -> Settings {
    Settings {
        popular_cache_ttl: Duration::ZERO,
        nats_url: Some(url.to_owned()),
        nats_stream: format!("T{:016X}", rand::random::<u64>()),
        ..crate::harness::settings()
    }
}

/// The relay and the platform's consumer, as `serve` runs them.
fn start_pipeline(app: &TestApp, transport: Arc<Transport>) -> CancellationToken {
    let shutdown = CancellationToken::new();
    tokio::spawn(outbox::relay(
        app.state.clone(),
        transport.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(commerce::platform::consume_jetstream(
        app.state.clone(),
        transport.jetstream(),
        shutdown.clone(),
    ));
    shutdown
}

async fn wait_for_ranking(app: &TestApp, expected: Vec<(i64, i64)>, within: Duration) {
    let started = std::time::Instant::now();
    loop {
        let seen = ranking(&popular(app).await);
        if seen == expected {
            return;
        }
        assert!(
            started.elapsed() < within,
            "popular is {seen:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delete_stream(transport: &Transport) {
    if let Transport::JetStream(nats) = transport {
        let _ = nats.context().delete_stream(nats.stream()).await;
    }
}

async fn orders_reach_the_platform_through_jetstream_once(backend: Backend) {
    if !nats_available().await {
        return;
    }
    let app =
        TestApp::with_settings(backend, nats_settings(&format!("nats://{SHARED_NATS}"))).await;
    let transport = Arc::new(Transport::from_settings(&app.state.settings).await.unwrap());
    let shutdown = start_pipeline(&app, transport.clone());
    let a = app.product("A", 100, 100).await;
    let b = app.product("B", 100, 100).await;
    buy(&app, 1, a, 2).await;
    buy(&app, 2, b, 3).await;
    wait_for_ranking(&app, vec![(b, 3), (a, 2)], Duration::from_secs(10)).await;
    // Publishing every event again changes nothing: JetStream drops the duplicate ids, and the
    // consumer would count an id once anyway.
    app.execute("UPDATE outbox SET delivered_at = NULL").await;
    app.state.outbox.notify();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
            .await,
        0
    );
    assert_eq!(ranking(&popular(&app).await), vec![(b, 3), (a, 2)]);
    shutdown.cancel();
    delete_stream(&transport).await;
}

/// A NATS server of the test's own, with JetStream storage in a temporary directory.
struct PrivateNats {
    child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateNats {
    async fn start(port: u16, dir: tempfile::TempDir) -> PrivateNats {
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

    async fn stop(mut self) -> (u16, tempfile::TempDir) {
        self.child.kill().await.unwrap();
        (self.port, self.dir)
    }
}

async fn orders_succeed_while_nats_is_down_and_their_events_follow_when_it_returns(
    backend: Backend,
) {
    if !nats_available().await {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nats = PrivateNats::start(port, tempfile::tempdir().unwrap()).await;
    let app =
        TestApp::with_settings(backend, nats_settings(&format!("nats://127.0.0.1:{port}"))).await;
    let transport = Arc::new(Transport::from_settings(&app.state.settings).await.unwrap());
    let shutdown = start_pipeline(&app, transport.clone());
    let a = app.product("A", 100, 100).await;
    buy(&app, 1, a, 1).await;
    wait_for_ranking(&app, vec![(a, 1)], Duration::from_secs(10)).await;

    let (port, dir) = nats.stop().await;
    buy(&app, 2, a, 2).await;
    buy(&app, 3, a, 3).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
            .await,
        2,
        "events wait in the outbox"
    );
    assert_eq!(ranking(&popular(&app).await), vec![(a, 1)]);

    let _nats = PrivateNats::start(port, dir).await;
    wait_for_ranking(&app, vec![(a, 6)], Duration::from_secs(20)).await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
            .await,
        0
    );
    shutdown.cancel();
}

on_both_backends!(
    orders_reach_the_platform_through_jetstream_once,
    orders_succeed_while_nats_is_down_and_their_events_follow_when_it_returns,
);
