//! `loadgen run` end to end: every scenario against a real server on a fresh SQLite file, small
//! enough for CI, with the invariants verified through the API.

use commerce::app::AppState;
use commerce::clock::SystemClock;
use commerce::config::Settings;
use commerce::outbox;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "loadgen-test-secret";

/// Serves the real router (with its outbox relay) on a free loopback port.
async fn server(dir: &tempfile::TempDir) -> String {
    let url = format!("sqlite://{}/loadgen.db", dir.path().display());
    let db = commerce::store::connect(&url, 8)
        .await
        .expect("the database opens");
    db.migrate().await.expect("the schema applies");
    // As the bench runs its server: without the per-user write limit.
    let settings = Settings {
        user_write_quota: None,
        ..Settings::default()
    };
    let state = AppState::new(db, settings, SECRET, Arc::new(SystemClock));
    let transport = Arc::new(state.settings.transport().await.unwrap());
    tokio::spawn(outbox::relay(
        state.relay(),
        transport,
        CancellationToken::new(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, state.router()).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_its_invariants_hold() {
    let dir = tempfile::tempdir().unwrap();
    let base = server(&dir).await;
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", "--base-url", &base, "--jwt-secret", SECRET])
        .args([
            "--scenario",
            "all",
            "--concurrency",
            "16",
            "--duration",
            "300ms",
        ])
        .args(["--users", "200", "--coupons", "50", "--stock", "40"])
        .output()
        .await
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("BROKEN"), "{stdout}");
    for scenario in [
        "detail",
        "popular",
        "browse",
        "charge",
        "coupon-rush",
        "order-rush-hot",
        "order-rush-spread",
        "mixed",
    ] {
        assert!(
            stdout.contains(&format!("\n{scenario} ")),
            "no line for {scenario}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("200 users for 50 coupons: 50 issued (expected 50), 150 sold out"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hot product: 40 sold to 200 users for 40 units"),
        "{stdout}"
    );
    assert!(stdout.contains("% of the HTTP ceiling"), "{stdout}");
}

#[tokio::test]
async fn a_server_that_is_not_there_fails_the_run() {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            "--base-url",
            "http://127.0.0.1:1",
            "--jwt-secret",
            SECRET,
        ])
        .args(["--scenario", "detail", "--duration", "100ms"])
        .output()
        .await
        .expect("loadgen runs");
    // 1: the run could not be carried out (2 would be a usage error or a broken invariant).
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("loadgen: "), "{stderr}");
}
