//! Tests of the real binary: crash safety under load, clean shutdown, demo mode.

use crate::harness::{Backend, TestDb, SECRET};
use crate::on_both_backends;
use commerce::db::Db;
use commerce::ids::UserId;
use rand::Rng;
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn command(database_url: &str) -> (Command, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_commerce"));
        command
            .arg("serve")
            .env("COMMERCE_DATABASE_URL", database_url)
            .env("COMMERCE_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .env_remove("COMMERCE_NATS_URL")
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        (command, format!("http://127.0.0.1:{port}"))
    }

    async fn start(database_url: &str) -> Server {
        let (mut command, base) = Self::command(database_url);
        command.env("COMMERCE_JWT_SECRET", SECRET);
        let server = Server {
            child: command.spawn().expect("spawn commerce"),
            base,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(response) = client
                .get(format!("{}/health/ready", self.base))
                .send()
                .await
            {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not become ready");
    }
}

fn token(user: i64, admin: bool) -> String {
    commerce::app::token(
        SECRET,
        UserId::new(user).unwrap(),
        admin,
        Duration::from_secs(3600),
    )
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> Option<(u16, Value)> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

const USERS: i64 = 40;
const INITIAL_STOCK: i64 = 300;

async fn a_server_killed_mid_load_loses_nothing(backend: Backend) {
    let db = TestDb::create(backend).await;
    let mut server = Server::start(&db.url).await;
    let client = reqwest::Client::new();
    let admin = token(1_000_000, true);
    let mut products = Vec::new();
    for n in 0..3 {
        let body =
            json!({"name": format!("p{n}"), "price": 1000 + n * 500, "stock": INITIAL_STOCK});
        let (status, product) = post(
            &client,
            format!("{}/api/v1/admin/products", server.base),
            &admin,
            body,
        )
        .await
        .unwrap();
        assert_eq!(status, 201);
        products.push(product["id"].as_i64().unwrap());
    }
    let coupon_body = json!({"name": "c", "discount_type": "FIXED", "discount_value": 500, "total_quantity": 25, "valid_days": 7});
    let (_, coupon) = post(
        &client,
        format!("{}/api/v1/admin/coupons", server.base),
        &admin,
        coupon_body,
    )
    .await
    .unwrap();
    let coupon = coupon["id"].as_i64().unwrap();
    for user in 1..=USERS {
        let charged = post(
            &client,
            format!("{}/api/v1/me/balance/charges", server.base),
            &token(user, false),
            json!({"amount": 30_000}),
        )
        .await;
        assert_eq!(charged.unwrap().0, 200);
    }

    // Load from many tasks; the server is killed while it runs.
    let stop = Arc::new(AtomicBool::new(false));
    let held: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let successes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..48)
        .map(|_| {
            let (client, base, stop, held, successes, products) =
                (client.clone(), server.base.clone(), stop.clone(), held.clone(), successes.clone(), products.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (user, op, product, quantity) = {
                        let mut rng = rand::rng();
                        (rng.random_range(1..=USERS), rng.random_range(0..10), products[rng.random_range(0..3)], rng.random_range(1..=3))
                    };
                    let outcome = match op {
                        0..=5 => {
                            let coupon_of_user = held.lock().unwrap().iter().find(|(u, _)| *u == user).map(|(_, c)| *c);
                            let body = json!({"items": [{"product_id": product, "quantity": quantity}], "user_coupon_id": coupon_of_user});
                            post(&client, format!("{base}/api/v1/orders"), &token(user, false), body).await
                        }
                        6..=7 => post(&client, format!("{base}/api/v1/me/balance/charges"), &token(user, false), json!({"amount": 1000})).await,
                        _ => {
                            let issued = post(&client, format!("{base}/api/v1/coupons/{coupon}/issue"), &token(user, false), json!({})).await;
                            if let Some((201, body)) = &issued {
                                held.lock().unwrap().push((user, body["id"].as_i64().unwrap()));
                            }
                            issued
                        }
                    };
                    if matches!(outcome, Some((200 | 201, _))) {
                        successes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.start_kill().expect("SIGKILL");
    server.child.wait().await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert!(
        successes.load(Ordering::Relaxed) > 50,
        "the load did not get going before the kill"
    );

    let server = Server::start(&db.url).await;
    let pool = Db::connect(&db.url, 2).await.unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(pool.reader())
                .await
                .expect(sql)
        }
    };
    assert!(count("SELECT COUNT(*) FROM orders").await > 0);
    // stock + sold = initial, for every product
    let oversold = count(
        "SELECT COUNT(*) FROM products p WHERE p.stock < 0 OR p.stock + COALESCE(
             (SELECT CAST(SUM(i.quantity) AS BIGINT) FROM order_items i WHERE i.product_id = p.id), 0) <> 300",
    );
    assert_eq!(
        oversold.await,
        0,
        "stock + sold must equal the initial stock"
    );
    // balance = charges - payments, for every user
    let off = count(
        "SELECT COUNT(*) FROM balances b WHERE b.balance <> (
             SELECT COALESCE(CAST(SUM(CASE WHEN h.kind = 'CHARGE' THEN h.amount ELSE -h.amount END) AS BIGINT), 0)
             FROM balance_history h WHERE h.user_id = b.user_id)",
    );
    assert_eq!(off.await, 0, "balance must equal charges - payments");
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
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox").await,
        count("SELECT COUNT(*) FROM orders").await,
        "one event per order"
    );
    // issued quantity = coupons held; a used coupon belongs to exactly one order
    let issued_off = count(
        "SELECT COUNT(*) FROM coupons c WHERE c.issued_quantity > c.total_quantity
             OR c.issued_quantity <> (SELECT COUNT(*) FROM user_coupons u WHERE u.coupon_id = c.id)",
    );
    assert_eq!(
        issued_off.await,
        0,
        "issued quantity must equal the coupons held"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM user_coupons WHERE used_at IS NOT NULL").await,
        count("SELECT COUNT(*) FROM orders WHERE user_coupon_id IS NOT NULL").await
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
        count("SELECT COALESCE(CAST(SUM(quantity) AS BIGINT), 0) FROM order_items").await,
        "every sale reaches the statistics exactly once"
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
    let db = TestDb::create(backend).await;
    let mut server = Server::start(&db.url).await;
    let pid = nix::unistd::Pid::from_raw(server.child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), server.child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

async fn demo_mode_loads_data_once_and_prints_tokens(backend: Backend) {
    let db = TestDb::create(backend).await;
    for _ in 0..2 {
        let (mut command, base) = Server::command(&db.url);
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
        let server = Server { child, base };
        server.wait_ready().await;
        let products: Value = reqwest::get(format!("{}/api/v1/products", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(products["items"].as_array().unwrap().len(), 7);
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
        let pool = Db::connect(&db.url, 2).await.unwrap();
        sqlx::query("DELETE FROM products WHERE name = 'by the printed admin token'")
            .execute(pool.reader())
            .await
            .unwrap();
        pool.close().await;
    }
}

async fn the_server_refuses_to_start_without_a_secret(backend: Backend) {
    let db = TestDb::create(backend).await;
    let (mut command, _) = Server::command(&db.url);
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
    let db = TestDb::create(backend).await;
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
    let pool = Db::connect(&db.url, 2).await.unwrap();
    let products: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(pool.reader())
        .await
        .unwrap();
    assert_eq!(products, 0);
    pool.close().await;
}

on_both_backends!(
    a_server_killed_mid_load_loses_nothing,
    sigterm_stops_the_server_cleanly,
    demo_mode_loads_data_once_and_prints_tokens,
    the_server_refuses_to_start_without_a_secret,
    the_token_command_mints_tokens_the_server_accepts,
    the_migrate_command_applies_the_schema,
);
