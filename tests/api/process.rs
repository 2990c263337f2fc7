//! Tests of the real binary: crash safety under load, clean shutdown, demo mode.

use crate::harness::{fresh_database, Backend, Raw, SECRET};
use crate::invariants::{
    assert_all_stored, assert_balances_match_history, assert_coupons_issued_are_held,
    assert_one_event_per_order, assert_stock_adds_up,
};
use crate::on_both_backends;
use commerce_test_support::fixtures;
use commerce_test_support::server::{self, Server};
use commerce_test_support::token;
use rand::Rng;
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

/// `commerce serve` on `database_url` (the kit's command: a free port, no per-user write limit,
/// no NATS), its stdout piped for the tests that read it; no secret yet.
fn command(database_url: &str) -> (Command, String) {
    let (mut command, base) =
        server::command(env!("CARGO_BIN_EXE_commerce").as_ref(), database_url);
    command.stdout(Stdio::piped());
    (command, base)
}

/// The server with the tests' secret, ready.
async fn start(database_url: &str) -> Server {
    let (mut command, base) = command(database_url);
    command.env("COMMERCE_JWT_SECRET", SECRET);
    Server::spawn(command, base)
        .await
        .expect("the server starts")
}

fn token(user: i64, admin: bool) -> String {
    token::mint(SECRET, user, admin)
}

/// A POST of the load: its status and body, or `None` when no answer came (the server died).
async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> Option<(u16, Value)> {
    fixtures::post(client, &url, token, &body).await.ok()
}

const USERS: i64 = 40;
const INITIAL_STOCK: i64 = 300;

/// The ids of the writes a server answered 2xx.
#[derive(Default)]
struct Confirmed {
    orders: Vec<i64>,
    cancels: Vec<i64>,
    charges: Vec<i64>,
    issues: Vec<i64>,
}

async fn a_server_killed_mid_load_loses_nothing(backend: Backend) {
    let db = fresh_database(backend).await;
    let mut server = start(&db.url).await;
    let client = reqwest::Client::new();
    let admin = token(1_000_000, true);
    let base = server.base.as_str();
    let mut products = Vec::new();
    for n in 0..3 {
        let (name, price) = (format!("p{n}"), 1000 + n * 500);
        let product = fixtures::create_product(&client, base, &admin, &name, price, INITIAL_STOCK);
        products.push(product.await.unwrap());
    }
    let coupon = fixtures::create_coupon(&client, base, &admin, "c", 500, 25)
        .await
        .unwrap();
    for user in 1..=USERS {
        let charged = fixtures::charge(&client, base, &token(user, false), 30_000).await;
        charged.unwrap();
    }

    // Load from many tasks; the server is killed while it runs. Every write answered 2xx is
    // recorded, to be found after the restart.
    let stop = Arc::new(AtomicBool::new(false));
    let held: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let placed: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let confirmed: Arc<Mutex<Confirmed>> = Arc::default();
    let workers: Vec<_> = (0..48)
        .map(|_| {
            let (client, base, stop, held, placed, confirmed, products) = (
                client.clone(), server.base.clone(), stop.clone(), held.clone(), placed.clone(),
                confirmed.clone(), products.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (user, op, product, quantity) = {
                        let mut rng = rand::rng();
                        (rng.random_range(1..=USERS), rng.random_range(0..10), products[rng.random_range(0..3)], rng.random_range(1..=3))
                    };
                    match op {
                        0..=4 => {
                            let coupon_of_user = held.lock().unwrap().iter().find(|(u, _)| *u == user).map(|(_, c)| *c);
                            let body = json!({"items": [{"product_id": product, "quantity": quantity}], "user_coupon_id": coupon_of_user});
                            if let Some((201, order)) = post(&client, format!("{base}/api/v1/orders"), &token(user, false), body).await {
                                let id = order["id"].as_i64().unwrap();
                                placed.lock().unwrap().push((user, id));
                                confirmed.lock().unwrap().orders.push(id);
                            }
                        }
                        5 => {
                            let order = placed.lock().unwrap().pop();
                            let Some((owner, order)) = order else { continue };
                            let cancelled = post(&client, format!("{base}/api/v1/orders/{order}/cancel"), &token(owner, false), json!({})).await;
                            if let Some((200, _)) = cancelled {
                                confirmed.lock().unwrap().cancels.push(order);
                            }
                        }
                        6..=7 => {
                            let charged = post(&client, format!("{base}/api/v1/me/balance/charges"), &token(user, false), json!({"amount": 1000})).await;
                            if let Some((200, receipt)) = charged {
                                confirmed.lock().unwrap().charges.push(receipt["history_id"].as_i64().unwrap());
                            }
                        }
                        _ => {
                            let issued = post(&client, format!("{base}/api/v1/coupons/{coupon}/issue"), &token(user, false), json!({})).await;
                            if let Some((201, body)) = issued {
                                let id = body["id"].as_i64().unwrap();
                                held.lock().unwrap().push((user, id));
                                confirmed.lock().unwrap().issues.push(id);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // Killed once the load is well under way, however long a loaded machine takes to get there.
    let under_way = async {
        loop {
            {
                let confirmed = confirmed.lock().unwrap();
                if confirmed.orders.len() + confirmed.charges.len() >= 150
                    && !confirmed.cancels.is_empty()
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), under_way)
        .await
        .expect("the load did not get going");
    server.child.start_kill().expect("SIGKILL");
    server.child.wait().await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let confirmed = std::mem::take(&mut *confirmed.lock().unwrap());

    let server = start(&db.url).await;
    let pool = Raw::connect(&db.url).await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { pool.scalar(sql).await }
    };
    // Every write answered 2xx before the kill is stored.
    for (what, query, ids) in [
        (
            "orders",
            "SELECT COUNT(*) FROM orders WHERE id IN",
            &confirmed.orders,
        ),
        (
            "cancels",
            "SELECT COUNT(*) FROM orders WHERE status = 'CANCELLED' AND id IN",
            &confirmed.cancels,
        ),
        (
            "charges",
            "SELECT COUNT(*) FROM balance_history WHERE kind = 'CHARGE' AND id IN",
            &confirmed.charges,
        ),
        (
            "coupon issues",
            "SELECT COUNT(*) FROM user_coupons WHERE id IN",
            &confirmed.issues,
        ),
    ] {
        assert_all_stored(&pool, what, query, ids).await;
    }
    let initial: Vec<(i64, i64)> = products.iter().map(|&p| (p, INITIAL_STOCK)).collect();
    assert_stock_adds_up(&pool, &initial).await;
    assert_balances_match_history(&pool).await;
    // one refund per cancelled order
    let unrefunded = count(
        "SELECT COUNT(*) FROM orders o WHERE o.status = 'CANCELLED' AND o.paid_amount > 0
             AND NOT EXISTS (SELECT 1 FROM balance_history h
                             WHERE h.order_id = o.id AND h.kind = 'REFUND' AND h.amount = o.paid_amount)",
    );
    assert_eq!(unrefunded.await, 0, "every cancelled order is refunded");
    // every payment belongs to an order and every paid order has its payment and its event
    let unpaid = count(
        "SELECT COUNT(*) FROM orders o WHERE (o.paid_amount > 0 AND NOT EXISTS (SELECT 1 FROM balance_history h
             WHERE h.order_id = o.id AND h.kind = 'PAYMENT' AND h.amount = o.paid_amount))
           OR NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)",
    );
    assert_eq!(unpaid.await, 0);
    let orphan_payments = count(
        "SELECT COUNT(*) FROM balance_history h WHERE h.kind = 'PAYMENT' AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = h.order_id)",
    );
    assert_eq!(orphan_payments.await, 0);
    // one event per order and one per cancellation
    assert_one_event_per_order(&pool).await;
    // issued quantity = coupons held; a used coupon belongs to exactly one order
    assert_coupons_issued_are_held(&pool).await;
    assert_eq!(
        count("SELECT COUNT(*) FROM user_coupons WHERE used_at IS NOT NULL").await,
        count("SELECT COUNT(*) FROM orders WHERE user_coupon_id IS NOT NULL AND status = 'PAID'")
            .await
    );

    // Events committed before the kill are delivered by the restarted server's relay, once.
    let mut backlog = -1;
    for _ in 0..100 {
        backlog = count("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").await;
        if backlog == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(backlog, 0, "the outbox drains after the restart");
    assert_eq!(
        count("SELECT COALESCE(CAST(SUM(quantity) AS BIGINT), 0) FROM platform_sales_live").await,
        count(
            "SELECT COALESCE(CAST(SUM(i.quantity) AS BIGINT), 0) FROM order_items i
             JOIN orders o ON o.id = i.order_id WHERE o.status = 'PAID'"
        )
        .await,
        "every sale and every cancellation reaches the statistics exactly once"
    );

    // And the restarted server takes orders.
    let (status, body) = post(
        &client,
        format!("{}/api/v1/orders", server.base),
        &token(USERS + 1, false),
        json!({"items": [{"product_id": products[0], "quantity": 1}]}),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("INSUFFICIENT_BALANCE"))
    );
    pool.close().await;
}

async fn sigterm_stops_the_server_cleanly(backend: Backend) {
    let db = fresh_database(backend).await;
    let mut server = start(&db.url).await;
    let pid = nix::unistd::Pid::from_raw(server.child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), server.child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

async fn demo_mode_loads_data_once_and_prints_tokens(backend: Backend) {
    let db = fresh_database(backend).await;
    for first in [true, false] {
        let (mut command, base) = command(&db.url);
        command.arg("--demo").env_remove("COMMERCE_JWT_SECRET");
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut admin = None;
        while let Some(line) = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap()
            .unwrap()
        {
            if let Some(token) = line.trim().strip_prefix("admin:       export ADMIN=") {
                admin = Some(token.to_owned());
                break;
            }
        }
        let mut server = Server { child, base };
        server.wait_ready().await.expect("the demo server starts");
        let products: Value = reqwest::get(format!("{}/api/v1/products", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(products["items"].as_array().unwrap().len(), 7);
        // One demo product's sale opens a minute after the data is loaded (at the first start),
        // at most 2 per customer; the others have no limit.
        let on_sale: Vec<&Value> = products["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !p["sale_starts_at"].is_null())
            .collect();
        assert_eq!(on_sale.len(), 1, "{products}");
        assert_eq!(on_sale[0]["name"], "Limited sneakers (flash sale)");
        assert_eq!(on_sale[0]["sale_ends_at"], Value::Null);
        let limited: Vec<(&Value, &Value)> = products["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !p["max_per_user"].is_null())
            .map(|p| (&p["name"], &p["max_per_user"]))
            .collect();
        assert_eq!(
            limited,
            [(&json!("Limited sneakers (flash sale)"), &json!(2))],
            "{products}"
        );
        let opens =
            chrono::DateTime::parse_from_rfc3339(on_sale[0]["sale_starts_at"].as_str().unwrap())
                .unwrap()
                .to_utc();
        let now = chrono::Utc::now();
        assert!(
            opens <= now + chrono::Duration::seconds(60),
            "opens at {opens}, now {now}"
        );
        if first {
            assert!(opens > now, "opens at {opens}, now {now}");
        }
        let client = reqwest::Client::new();
        let coupon = client
            .get(format!("{}/api/v1/coupons/1", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(coupon.status(), 200);
        let created = post(
            &client,
            format!("{}/api/v1/admin/products", server.base),
            &admin.expect("the admin token is printed"),
            json!({"name": "by the printed admin token", "price": 1, "stock": 0}),
        )
        .await;
        assert_eq!(created.unwrap().0, 201);
        drop(server);
        let pool = Raw::connect(&db.url).await;
        pool.execute("DELETE FROM products WHERE name = 'by the printed admin token'")
            .await;
        pool.close().await;
    }
}

async fn the_server_refuses_to_start_without_a_secret(backend: Backend) {
    let db = fresh_database(backend).await;
    let (mut command, _) = command(&db.url);
    command
        .env_remove("COMMERCE_JWT_SECRET")
        .stderr(Stdio::piped());
    let output = command.output().await.unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("COMMERCE_JWT_SECRET"));
}

async fn the_token_command_mints_tokens_the_server_accepts(backend: Backend) {
    let app = crate::harness::TestApp::new(backend).await;
    let mint = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_commerce"))
            .arg("token")
            .args(args)
            .env("COMMERCE_JWT_SECRET", SECRET)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let user = mint(&["--user", "7"]);
    let balance = app.get("/api/v1/me/balance").token(&user).send().await;
    assert_eq!(balance.body["user_id"], 7);
    let admin = mint(&["--user", "1", "--admin", "--ttl", "10m"]);
    let created = app
        .post("/api/v1/admin/products")
        .token(&admin)
        .json(json!({"name": "x", "price": 1, "stock": 1}))
        .send()
        .await;
    assert_eq!(created.status, axum::http::StatusCode::CREATED);
    app.post("/api/v1/admin/products")
        .token(&user)
        .json(json!({"name": "x", "price": 1, "stock": 1}))
        .send()
        .await
        .assert_problem(axum::http::StatusCode::FORBIDDEN, "FORBIDDEN");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_commerce"))
        .args(["token", "--user", "0"])
        .env("COMMERCE_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

async fn the_migrate_command_applies_the_schema(backend: Backend) {
    let db = fresh_database(backend).await;
    for _ in 0..2 {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_commerce"))
            .arg("migrate")
            .env("COMMERCE_DATABASE_URL", &db.url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let pool = Raw::connect(&db.url).await;
    assert_eq!(pool.scalar("SELECT COUNT(*) FROM products").await, 0);
    pool.close().await;
}

/// A server with short edge timeouts (1 s for heads and bodies), optionally under an open-file
/// limit of `nofile` (soft and hard).
async fn edge_server(database_url: &str, nofile: Option<u64>) -> Server {
    let (mut command, base) = command(database_url);
    command
        .env("COMMERCE_JWT_SECRET", SECRET)
        .env("COMMERCE_HEADER_TIMEOUT", "1s")
        .env("COMMERCE_BODY_TIMEOUT", "1s");
    if let Some(limit) = nofile {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_NOFILE,
                    limit,
                    limit,
                )
                .map_err(std::io::Error::from)
            });
        }
    }
    Server::spawn(command, base)
        .await
        .expect("the edge server starts")
}

/// Reads until the peer closes the connection; `None` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut seen = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut seen))
        .await
        .ok()
        .map(|_| String::from_utf8_lossy(&seen).into_owned())
}

async fn slow_and_idle_connections_are_cut_off(backend: Backend) {
    let db = fresh_database(backend).await;
    let server = edge_server(&db.url, None).await;
    let mut partial = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: test\r\n")
            .await
            .unwrap();
        partial.push(stream);
    }
    // A keep-alive connection that was answered once and then says nothing.
    let mut idle = TcpStream::connect(server.addr()).await.unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut first = vec![0; 1024];
    let n = idle.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    // A body that stops arriving.
    let mut stalled = TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST /api/v1/me/balance/charges HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"amount\"",
        token(7, false)
    );
    stalled.write_all(head.as_bytes()).await.unwrap();

    // The server cuts at 1 s; a connection it never cuts stays open forever. A bound well
    // above the timeout tells the two apart without timing a loaded machine to the second.
    let started = std::time::Instant::now();
    let limit = Duration::from_secs(15);
    for stream in &mut partial {
        assert!(
            closed_within(stream, limit).await.is_some(),
            "a partial request head was not cut off"
        );
    }
    assert!(
        closed_within(&mut idle, limit).await.is_some(),
        "an idle keep-alive connection was not closed"
    );
    let answer = closed_within(&mut stalled, limit)
        .await
        .expect("a stalled body was not cut off");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
    // Nothing was charged, and the server still answers.
    let client = reqwest::Client::new();
    let balance: Value = client
        .get(format!("{}/api/v1/me/balance", server.base))
        .bearer_auth(token(7, false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(balance["balance"], 0);
}

/// 1,100 idle sockets against a file limit of 1,024: the server caps its connections below the
/// limit, cuts the idle ones at the header timeout, and answers a newcomer right after.
async fn idle_sockets_cannot_keep_the_server_from_answering(backend: Backend) {
    // This process holds the 1,100 client ends (twice while both backends' twins run, besides
    // every other test's files): it raises its own limit as the server does.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    assert!(
        nofile >= 4096,
        "the test needs room for its sockets; the open-file limit is {nofile}"
    );
    let db = fresh_database(backend).await;
    let server = edge_server(&db.url, Some(1024)).await;
    let mut idle = Vec::new();
    for _ in 0..1100 {
        idle.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    // The header timeout is 1 s: a server that stopped accepting would not answer at all, so a
    // generous bound tells it apart without timing a loaded machine to the second.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let live = client
        .get(format!("{}/health/live", server.base))
        .send()
        .await
        .expect("/health/live answers once the idle connections are cut");
    assert_eq!(live.status(), 200);
    drop(idle);
    let again = client
        .get(format!("{}/health/ready", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}

async fn the_server_refuses_a_short_secret(backend: Backend) {
    let db = fresh_database(backend).await;
    for (name, strong) in [
        ("COMMERCE_JWT_SECRET", false),
        ("COMMERCE_JWT_PREVIOUS_SECRET", true),
    ] {
        let (mut command, _) = command(&db.url);
        command
            .env(
                "COMMERCE_JWT_SECRET",
                if strong { SECRET } else { "sh0rt-s3cret" },
            )
            .env("COMMERCE_JWT_PREVIOUS_SECRET", "sh0rt-s3cret")
            .stderr(Stdio::piped());
        let output = command.output().await.unwrap();
        assert!(
            !output.status.success(),
            "{name}: a short secret was accepted"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name) && stderr.contains("32"), "{stderr}");
        assert!(
            !stderr.contains("sh0rt-s3cret"),
            "the secret is printed: {stderr}"
        );
    }
}

/// A fresh database has a month of empty days to catch up: one log line, not 31.
async fn start_up_logs_one_line_for_the_daily_catch_up(backend: Backend) {
    let db = fresh_database(backend).await;
    let (mut command, _) = command(&db.url);
    command
        .arg("--demo")
        .env_remove("COMMERCE_JWT_SECRET")
        .env("RUST_LOG", "info")
        .env("COMMERCE_LOG_FORMAT", "json")
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let caught_up = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("daily sales stored");
            log.push(line);
            if done {
                return;
            }
        }
    })
    .await;
    // Let any further per-day lines come out before stopping the server.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    while let Some(line) = lines.next_line().await.unwrap() {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(caught_up.is_ok(), "no catch-up line: {log}");
    assert_eq!(log.matches("daily sales stored").count(), 1, "{log}");
    assert!(log.contains(r#""days":31"#), "{log}");
}

on_both_backends!(
    slow_and_idle_connections_are_cut_off,
    idle_sockets_cannot_keep_the_server_from_answering,
    the_server_refuses_a_short_secret,
    start_up_logs_one_line_for_the_daily_catch_up,
    a_server_killed_mid_load_loses_nothing,
    sigterm_stops_the_server_cleanly,
    demo_mode_loads_data_once_and_prints_tokens,
    the_server_refuses_to_start_without_a_secret,
    the_token_command_mints_tokens_the_server_accepts,
    the_migrate_command_applies_the_schema,
);
