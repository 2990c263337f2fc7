//! Storage faults as an operator's bad day brings them: the disk fills up under SQLite, and
//! PostgreSQL's backends are killed in the middle of a load. Nothing is confirmed that is not
//! stored, no fault becomes a 500, and the server recovers without a restart.

use axum::http::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{concurrently, Backend, Response, TestApp};
use crate::invariants::{assert_all_stored, assert_balances_match_history, assert_stock_adds_up};

/// A small tmpfs of its own, unmounted on drop: a disk that really fills up.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            mounted,
            "the disk-full test mounts a small tmpfs, which needs root (CAP_SYS_ADMIN)"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk refuses more; returns it, so deleting it clears the fault.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // The last partial block may have found room: write byte by byte to the very end.
        while file.write_all(&[0]).is_ok() && file.flush().is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.path())
            .status();
    }
}

/// A write's answer during a fault: 2xx, or 503 UNAVAILABLE with Retry-After; never else.
#[track_caller]
fn stored_or_unavailable(response: &Response) -> bool {
    if response.status.is_success() {
        return true;
    }
    response.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert!(
        response.headers.contains_key("retry-after"),
        "{}",
        response.text
    );
    false
}

async fn ready_status(app: &TestApp) -> StatusCode {
    app.get("/health/ready").send().await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_a_full_disk_answers_503_and_confirms_only_what_it_stored() {
    let disk = SmallDisk::mount("16m");
    let url = format!("sqlite://{}/shop.db", disk.path().display());
    let app = TestApp::at_url(Backend::Sqlite, &url).await;
    let product = app.product("Umbrella", 100, 1_000).await;
    let users = 1..=5i64;
    for user in users.clone() {
        app.charge(user, 100_000).await;
    }

    let filler = disk.fill();
    let (mut charged, mut ordered) = (0, 0);
    let mut refused_charges = Vec::new();
    for i in 0..30 {
        let user = 1 + i % 5;
        let key = format!("charge-{i}");
        let charge = app
            .post("/api/v1/me/balance/charges")
            .token(&app.token(user))
            .header("idempotency-key", &key)
            .json(json!({"amount": 1000}))
            .send()
            .await;
        if stored_or_unavailable(&charge) {
            charged += 1;
        } else {
            refused_charges.push((user, key));
        }
        let order = app
            .post("/api/v1/orders")
            .token(&app.token(user))
            .json(json!({"items": [{"product_id": product, "quantity": 1}]}))
            .send()
            .await;
        ordered += stored_or_unavailable(&order) as i64;
    }
    // Writes that wait together share one transaction: a batch that cannot commit answers none
    // of its writes 2xx (the totals below count what was confirmed).
    let burst = concurrently((0..40).map(|i| {
        app.post("/api/v1/me/balance/charges")
            .token(&app.token(1 + i % 5))
            .json(json!({"amount": 1000}))
    }))
    .await;
    charged += burst.iter().filter(|r| stored_or_unavailable(r)).count() as i64;
    assert!(
        !refused_charges.is_empty(),
        "the full disk refused no write: the fault did not take"
    );
    assert_eq!(ready_status(&app).await, StatusCode::SERVICE_UNAVAILABLE);

    std::fs::remove_file(filler).expect("free the disk");
    assert_eq!(
        ready_status(&app).await,
        StatusCode::OK,
        "ready again by itself"
    );
    // A retry with the same key after the fault is safe: it applies once.
    for (user, key) in &refused_charges {
        for _ in 0..2 {
            let retry = app
                .post("/api/v1/me/balance/charges")
                .token(&app.token(*user))
                .header("idempotency-key", key)
                .json(json!({"amount": 1000}))
                .send()
                .await;
            assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
        }
    }
    charged += refused_charges.len() as i64;
    for user in users.clone() {
        app.charge(user, 1000).await;
    }
    charged += 5;

    let app = app.restart().await;
    let mut total = 0;
    for user in users {
        total += app.balance(user).await;
    }
    assert_eq!(total, 5 * 100_000 + charged * 1000 - ordered * 100);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, ordered);
    let stock = app.get(&format!("/api/v1/products/{product}")).send().await;
    assert_eq!(stock.body["stock"], 1_000 - ordered);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM balance_history WHERE kind = 'CHARGE'")
            .await,
        5 + charged
    );
    assert_balances_match_history(app.raw()).await;
    assert_stock_adds_up(app.raw(), &[(product, 1_000)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_backends_killed_mid_load_lose_nothing_and_recover() {
    if !crate::harness::postgres_available().await {
        return;
    }
    let app = TestApp::new(Backend::Postgres).await;
    let mut products = Vec::new();
    for name in ["Lamp A", "Lamp B", "Lamp C", "Lamp D"] {
        products.push(app.product(name, 100, 10_000).await);
    }
    let users: Vec<i64> = (1..=24).collect();
    for user in &users {
        app.charge(*user, 500_000).await;
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let app = &app;
    let load = users.iter().map(|&user| {
        let (token, product) = (app.token(user), products[user as usize % products.len()]);
        async move {
            let mut answers = Vec::new();
            let mut cancels = Vec::new();
            while tokio::time::Instant::now() < deadline {
                let order = json!({"items": [{"product_id": product, "quantity": 1}]});
                let charge = json!({"amount": 100});
                let calls = [
                    app.post("/api/v1/orders").token(&token).json(order),
                    app.post("/api/v1/me/balance/charges")
                        .token(&token)
                        .json(charge),
                ];
                for call in calls {
                    answers.push(call.send().await);
                }
                // Every other paid order is cancelled: refunds and returned units under the
                // fault too.
                let placed = &answers[answers.len() - 2];
                if placed.status == StatusCode::CREATED && answers.len() % 4 == 0 {
                    let id = placed.body["id"].as_i64().expect("order id");
                    let cancel = app
                        .post(&format!("/api/v1/orders/{id}/cancel"))
                        .token(&token)
                        .send()
                        .await;
                    cancels.push((id, cancel));
                }
            }
            (answers, cancels)
        }
    });
    let killer = async {
        let mut killed = 0;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            killed += app
                .scalar(
                    "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                .await;
        }
        killed
    };
    let (load, killed) = tokio::join!(futures::future::join_all(load), killer);
    let (answers, cancels): (Vec<_>, Vec<_>) = load.into_iter().unzip();
    let answers: Vec<Response> = answers.into_iter().flatten().collect();
    let cancels: Vec<(i64, Response)> = cancels.into_iter().flatten().collect();
    assert!(killed > 0, "no backend was terminated");

    let (mut paid_orders, mut charges) = (Vec::new(), Vec::new());
    for answer in &answers {
        if stored_or_unavailable(answer) {
            match answer.status {
                StatusCode::CREATED => {
                    paid_orders.push(answer.body["id"].as_i64().expect("order id"))
                }
                _ => charges.push(answer.body["history_id"].as_i64().expect("history id")),
            }
        }
    }
    let cancelled: Vec<i64> = cancels
        .iter()
        .filter(|(_, answer)| stored_or_unavailable(answer))
        .map(|(id, _)| *id)
        .collect();
    assert!(!paid_orders.is_empty() && !cancelled.is_empty());
    assert_eq!(
        ready_status(app).await,
        StatusCode::OK,
        "ready without a restart"
    );
    let after = concurrently(users.iter().map(|&user| {
        app.post("/api/v1/me/balance/charges")
            .token(&app.token(user))
            .json(json!({"amount": 100}))
    }))
    .await;
    assert!(after.iter().all(|r| r.status == StatusCode::OK));

    // Every confirmed write is stored; money and stock add up for everyone.
    let raw = app.raw();
    assert_all_stored(
        raw,
        "orders",
        "SELECT COUNT(*) FROM orders WHERE id IN",
        &paid_orders,
    )
    .await;
    assert_all_stored(
        raw,
        "cancels",
        "SELECT COUNT(*) FROM orders WHERE status = 'CANCELLED' AND id IN",
        &cancelled,
    )
    .await;
    assert_all_stored(
        raw,
        "charges",
        "SELECT COUNT(*) FROM balance_history WHERE kind = 'CHARGE' AND id IN",
        &charges,
    )
    .await;
    assert_balances_match_history(raw).await;
    let initial: Vec<(i64, i64)> = products.iter().map(|&p| (p, 10_000)).collect();
    assert_stock_adds_up(raw, &initial).await;
}
