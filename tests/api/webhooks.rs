//! Webhooks through the router on both backends, with real receivers on loopback: signed
//! deliveries retried until they arrive, a hanging receiver that does not slow orders,
//! refused registrations, admin-only access, the audit log, retries, and (with the real
//! binary) a delivery that survives SIGKILL.

use crate::harness::{fresh_database, settings, Backend, TestApp, SECRET};
use crate::on_both_backends;
use axum::http::{HeaderMap, StatusCode};
use commerce::config::Settings;
use commerce_test_support::fixtures;
use commerce_test_support::server::{self, Server};
use commerce_test_support::token;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A request as a receiver got it.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    delivery: String,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    /// Checks `Commerce-Signature` as a receiver would, keyed with the secret's characters.
    fn verifies(&self, secret: &str) -> bool {
        let Some((t, v1)) = self
            .signature
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(",v1="))
        else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{}", self.body).as_bytes());
        hex::decode(v1).is_ok_and(|tag| mac.verify_slice(&tag).is_ok())
    }
}

/// How a receiver answers.
#[derive(Clone, Copy)]
enum Answers {
    /// 500 to this many requests, then 200.
    FailFirst(usize),
    /// Never.
    Hang,
}

/// An HTTP receiver on loopback, recording every request; stops with the test's runtime.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(answers: Answers) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(listener, answers)
    }

    fn on(listener: tokio::net::TcpListener, answers: Answers) -> Receiver {
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            got: Arc::default(),
        };
        let got = receiver.got.clone();
        let seen = Arc::new(AtomicUsize::new(0));
        let hook = move |headers: HeaderMap, body: String| {
            let (got, seen) = (got.clone(), seen.clone());
            async move {
                let header = |name: &str| {
                    let value = headers.get(name).and_then(|v| v.to_str().ok());
                    value.unwrap_or_default().to_owned()
                };
                got.lock().unwrap().push(Received {
                    event: header("commerce-event"),
                    delivery: header("commerce-delivery"),
                    signature: header("commerce-signature"),
                    body,
                });
                match answers {
                    Answers::Hang => std::future::pending().await,
                    Answers::FailFirst(n) if seen.fetch_add(1, Ordering::SeqCst) < n => {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                    Answers::FailFirst(_) => StatusCode::OK,
                }
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(hook));
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn allowing_private() -> Settings {
    Settings {
        webhook_allow_private: true,
        ..settings()
    }
}

/// Starts the app's webhook worker until the returned token is cancelled.
fn start_worker(app: &TestApp) -> CancellationToken {
    let stop = CancellationToken::new();
    let worker = app.state.webhook_worker().expect("a client");
    tokio::spawn(commerce::webhook::run(worker, stop.clone()));
    stop
}

async fn register(app: &TestApp, url: &str, events: Value) -> crate::harness::Response {
    app.post("/api/v1/admin/webhooks")
        .token(&app.admin())
        .json(json!({"url": url, "events": events}))
        .send()
        .await
}

async fn registered(app: &TestApp, url: &str) -> Value {
    let response = register(app, url, json!(["order.paid", "order.cancelled"])).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.body
}

async fn order(app: &TestApp, user: i64, product: i64) -> i64 {
    let response = app
        .post("/api/v1/orders")
        .token(&app.token(user))
        .json(json!({"items": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.body["id"].as_i64().unwrap()
}

async fn deliveries(app: &TestApp, webhook: i64) -> Vec<Value> {
    let response = app
        .get(&format!(
            "/api/v1/admin/webhooks/{webhook}/deliveries?limit=100"
        ))
        .token(&app.admin())
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.body["items"].as_array().unwrap().clone()
}

/// Waits until `done`, moving the app's clock on so that backoffs run out (the worker reads
/// due times from it); fails after `within`.
async fn until<F: std::future::Future<Output = bool>>(
    app: &TestApp,
    within: Duration,
    mut done: impl FnMut() -> F,
) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < within, "not done within {within:?}");
        app.clock.advance(chrono::Duration::seconds(2));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn every_event_arrives_signed_after_retries(backend: Backend) {
    // References, so that the conditions waited for can copy them.
    let app = &TestApp::with_settings(backend, allowing_private()).await;
    let receiver = &Receiver::start(Answers::FailFirst(2)).await;
    let hook = registered(app, &receiver.url()).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let stop = start_worker(app);
    let product = app.product("Lamp", 1000, 10).await;
    app.charge(1, 10_000).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(order(app, 1, product).await);
    }
    let cancelled = app
        .post(&format!("/api/v1/orders/{}/cancel", orders[0]))
        .token(&app.token(1))
        .send()
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);

    let events = app.scalar("SELECT COUNT(*) FROM outbox").await;
    assert_eq!(events, 4);
    let delivered_ids = || {
        let mut ids: Vec<i64> = receiver
            .got()
            .iter()
            .map(|r| r.json()["id"].as_i64().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let hook_id = hook["id"].as_i64().unwrap();
    until(app, Duration::from_secs(30), || async move {
        delivered_ids().len() == 4
            && deliveries(app, hook_id)
                .await
                .iter()
                .all(|d| d["status"] == "DELIVERED")
    })
    .await;
    stop.cancel();

    let got = receiver.got();
    assert_eq!(got.len(), 4 + 2, "four events, two of them sent twice");
    for received in &got {
        assert!(received.verifies(&secret), "{received:?}");
        let body = received.json();
        assert_eq!(body["type"], received.event.as_str());
        assert!(body["occurred_at"].is_string());
        assert!(orders.contains(&body["data"]["id"].as_i64().unwrap()));
        assert!(received.delivery.parse::<i64>().is_ok());
    }
    let cancellation: Vec<_> = got
        .iter()
        .filter(|r| r.event == "order.cancelled")
        .collect();
    assert!(!cancellation.is_empty());
    assert_eq!(cancellation[0].json()["data"]["status"], "CANCELLED");
    assert_eq!(cancellation[0].json()["data"]["id"], orders[0]);

    let log = deliveries(app, hook_id).await;
    assert_eq!(log.len(), 4);
    let attempts: i64 = log.iter().map(|d| d["attempts"].as_i64().unwrap()).sum();
    assert_eq!(attempts, 6);
    assert!(log.iter().any(|d| d["attempts"].as_i64().unwrap() > 1));
    for delivery in &log {
        assert_eq!(delivery["last_status_code"], 200);
        assert!(delivery["delivered_at"].is_string());
        assert_eq!(delivery["next_attempt_at"], Value::Null);
    }
    let ids: Vec<i64> = log.iter().map(|d| d["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
}

/// The median of `orders` orders' latencies.
async fn median_order_latency(app: &TestApp, product: i64, orders: usize) -> Duration {
    let mut latencies = Vec::with_capacity(orders);
    for _ in 0..orders {
        let started = Instant::now();
        order(app, 1, product).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    latencies[orders / 2]
}

async fn a_hanging_receiver_does_not_slow_orders(backend: Backend) {
    let app = TestApp::with_settings(backend, allowing_private()).await;
    let stop = start_worker(&app);
    let product = app.product("Lamp", 100, 1000).await;
    app.charge(1, 100_000).await;
    let without = median_order_latency(&app, product, 50).await;
    let receiver = Receiver::start(Answers::Hang).await;
    let hook = registered(&app, &receiver.url()).await;
    let with = median_order_latency(&app, product, 50).await;
    assert!(
        with <= without * 2 + Duration::from_millis(20),
        "median order latency {with:?} with a hanging receiver, {without:?} without"
    );
    // The receiver got requests and answered none; each attempt ends at the 10 s timeout.
    let hook_id = hook["id"].as_i64().unwrap();
    let started = Instant::now();
    loop {
        let log = deliveries(&app, hook_id).await;
        if let Some(timed_out) = log.iter().find(|d| d["attempts"].as_i64() > Some(0)) {
            assert_eq!(timed_out["status"], "PENDING");
            assert_eq!(timed_out["last_status_code"], Value::Null);
            let error = timed_out["last_error"].as_str().unwrap();
            assert!(error.contains("timed out"), "{error}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no attempt ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!receiver.got().is_empty());
    stop.cancel();
}

async fn a_hanging_receiver_does_not_hold_up_another(backend: Backend) {
    let app = &TestApp::with_settings(backend, allowing_private()).await;
    let hanging = &Receiver::start(Answers::Hang).await;
    registered(app, &hanging.url()).await;
    let product = app.product("Lamp", 100, 1000).await;
    app.charge(1, 100_000).await;
    // A backlog for the hanging receiver, older than anything for the other: 40 deliveries,
    // more than the worker's 32 senders.
    for _ in 0..40 {
        order(app, 1, product).await;
    }
    let stop = start_worker(app);
    let started = Instant::now();
    // Real time only: the app's clock stands still, so no claim's lease runs out.
    while hanging.got().len() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no sends began"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let healthy = &Receiver::start(Answers::FailFirst(0)).await;
    registered(app, &healthy.url()).await;
    order(app, 1, product).await;
    let started = Instant::now();
    while healthy.got().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the healthy receiver waited behind the hanging one"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The hanging receiver holds 4 senders (each attempt runs to the 10 s timeout meanwhile).
    assert_eq!(hanging.got().len(), 4, "sends in flight to one receiver");
    stop.cancel();
}

async fn registration_access_retry_delete_and_audit(backend: Backend) {
    let strict = TestApp::new(backend).await;
    let refused = register(&strict, "http://127.0.0.1:9/hook", json!(["order.paid"])).await;
    refused.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .starts_with("webhook address"));
    let named = register(&strict, "http://localhost:9/hook", json!(["order.paid"])).await;
    named.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    drop(strict);

    let app = &TestApp::with_settings(backend, allowing_private()).await;
    for (url, events) in [
        (
            "http://169.254.169.254/latest/meta-data",
            json!(["order.paid"]),
        ),
        ("http://[fe80::1]/", json!(["order.paid"])),
        ("ftp://127.0.0.1/hook", json!(["order.paid"])),
        ("not a url", json!(["order.paid"])),
        ("http://127.0.0.1:9/hook", json!([])),
        (
            "http://127.0.0.1:9/hook",
            json!(["order.paid", "order.paid"]),
        ),
        ("http://127.0.0.1:9/hook", json!(["order.shipped"])),
    ] {
        let response = register(app, url, events.clone()).await;
        response.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        assert!(response.text.len() < 2000, "{url} {events}");
    }

    let receiver = &Receiver::start(Answers::FailFirst(0)).await;
    let hook = registered(app, &receiver.url()).await;
    let id = hook["id"].as_i64().unwrap();
    let secret = hook["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    let list = app
        .get("/api/v1/admin/webhooks")
        .token(&app.admin())
        .send()
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let listed = json!({"id": id, "url": receiver.url(), "events": ["order.paid", "order.cancelled"], "created_at": hook["created_at"]});
    assert_eq!(
        list.body,
        json!({"items": [listed.clone()], "next_cursor": null})
    );

    // Users are refused every webhook operation.
    let user = app.token(1);
    for (method, path) in [
        ("POST", "/api/v1/admin/webhooks".to_owned()),
        ("GET", "/api/v1/admin/webhooks".to_owned()),
        ("DELETE", format!("/api/v1/admin/webhooks/{id}")),
        ("GET", format!("/api/v1/admin/webhooks/{id}/deliveries")),
        (
            "POST",
            "/api/v1/admin/webhooks/deliveries/1/retry".to_owned(),
        ),
    ] {
        let response = app
            .call(method.parse().unwrap(), &path)
            .token(&user)
            .json(json!({"url": receiver.url(), "events": ["order.paid"]}))
            .send()
            .await;
        response.assert_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    }

    // Delivered, then retried by an admin: another attempt follows at once.
    let stop = start_worker(app);
    let product = app.product("Lamp", 1000, 10).await;
    app.charge(1, 10_000).await;
    order(app, 1, product).await;
    until(app, Duration::from_secs(20), || async move {
        deliveries(app, id)
            .await
            .first()
            .map(|d| d["status"].clone())
            == Some("DELIVERED".into())
    })
    .await;
    let delivery = deliveries(app, id).await[0]["id"].as_i64().unwrap();
    let retried = app
        .post(&format!(
            "/api/v1/admin/webhooks/deliveries/{delivery}/retry"
        ))
        .token(&app.admin())
        .send()
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.text);
    until(app, Duration::from_secs(20), || async move {
        receiver.got().len() == 2 && deliveries(app, id).await[0]["attempts"] == 2
    })
    .await;
    stop.cancel();
    let unknown = app
        .post("/api/v1/admin/webhooks/deliveries/999999/retry")
        .token(&app.admin())
        .send()
        .await;
    unknown.assert_problem(StatusCode::NOT_FOUND, "NOT_FOUND");

    let delete = || {
        app.call(
            "DELETE".parse().unwrap(),
            &format!("/api/v1/admin/webhooks/{id}"),
        )
        .token(&app.admin())
        .send()
    };
    assert_eq!(delete().await.status, StatusCode::NO_CONTENT);
    delete()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    app.get(&format!("/api/v1/admin/webhooks/{id}/deliveries"))
        .token(&app.admin())
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "NOT_FOUND");

    let audit = app
        .get("/api/v1/admin/audit")
        .token(&app.admin())
        .send()
        .await;
    let entries: Vec<&Value> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"] == format!("webhook:{id}"))
        .collect();
    assert_eq!(entries.len(), 2, "{}", audit.text);
    assert_eq!(entries[0]["action"], "webhook.delete");
    assert_eq!(entries[0]["before"], listed);
    assert_eq!(entries[0]["after"], Value::Null);
    assert_eq!(entries[1]["action"], "webhook.create");
    assert_eq!(entries[1]["before"], Value::Null);
    assert_eq!(entries[1]["after"], listed);
}

/// The real binary on `database_url`, webhooks to loopback allowed.
async fn serve_allowing_private(database_url: &str) -> Server {
    let (mut command, base) =
        server::command(env!("CARGO_BIN_EXE_commerce").as_ref(), database_url);
    command
        .env("COMMERCE_JWT_SECRET", SECRET)
        .env("COMMERCE_WEBHOOK_ALLOW_PRIVATE", "true");
    Server::spawn(command, base)
        .await
        .expect("the server starts")
}

/// An order committed while the receiver is down, the server SIGKILLed: a new server on the
/// same database delivers the event once the receiver is up.
async fn a_delivery_survives_sigkill(backend: Backend) {
    let db = fresh_database(backend).await;
    // A port with nothing listening yet: the receiver is down.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut server = serve_allowing_private(&db.url).await;
    let client = reqwest::Client::new();
    let admin = token::admin(SECRET);
    let base = server.base.clone();
    let url = format!("http://127.0.0.1:{port}/hook");
    let (status, hook) = fixtures::post(
        &client,
        &format!("{base}/api/v1/admin/webhooks"),
        &admin,
        &json!({"url": url, "events": ["order.paid"]}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{hook}");
    let product = fixtures::create_product(&client, &base, &admin, "Lamp", 1000, 5)
        .await
        .unwrap();
    let user = token::user(SECRET, 1);
    fixtures::charge(&client, &base, &user, 5000).await.unwrap();
    let (status, order) = fixtures::post(
        &client,
        &format!("{base}/api/v1/orders"),
        &user,
        &json!({"items": [{"product_id": product, "quantity": 1}]}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{order}");
    server.child.start_kill().expect("SIGKILL");
    server.child.wait().await.unwrap();

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let receiver = Receiver::on(listener, Answers::FailFirst(0));
    let _server = serve_allowing_private(&db.url).await;
    let started = Instant::now();
    while receiver.got().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the event never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = &receiver.got()[0];
    assert!(received.verifies(hook["secret"].as_str().unwrap()));
    assert_eq!(received.json()["type"], "order.paid");
    assert_eq!(received.json()["data"]["id"], order["id"]);
}

on_both_backends!(
    every_event_arrives_signed_after_retries,
    a_hanging_receiver_does_not_slow_orders,
    a_hanging_receiver_does_not_hold_up_another,
    registration_access_retry_delete_and_audit,
    a_delivery_survives_sigkill,
);
