//! `loadgen run` end to end: every scenario against a real server on a fresh SQLite file, small
//! enough for CI, with the invariants verified through the API.
//!
//! The server is the real `commerce` binary (the kit finds it beside this test, or at
//! `COMMERCE_BIN`): `cargo test --workspace` builds it, and so does `cargo build -p commerce`.

use commerce_test_support::server::{self, Server};
use commerce_test_support::{invariants, Database, Raw};
use tokio::process::Command;

const SECRET: &str = "loadgen-test-secret-of-32-bytes!";

/// The real binary on a fresh SQLite file, as the bench starts it (without the per-user write
/// limit, with its outbox relay).
async fn server(db: &Database) -> Server {
    let bin = server::binary().expect("the commerce binary");
    Server::start(&bin, &db.url, SECRET)
        .await
        .expect("the server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_its_invariants_hold() {
    let db = Database::sqlite("loadgen_test").unwrap();
    let mut server = server(&db).await;
    let base = server.base.clone();
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
    // What the API showed, the database holds: the kit's invariants of stored state.
    let raw = Raw::connect(&db.url).await;
    for check in invariants::all(&raw).await.unwrap() {
        check.assert();
    }
    raw.close().await;
    server.kill().await.unwrap();
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
