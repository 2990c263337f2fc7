//! Stalls: a row lock held by another session, a stopped database, more writes than can commit
//! in time. Whatever happens, a write answered 503 is not carried out afterwards (but for the
//! one batch that may have been committing), and writes that need nothing stuck go on.

use axum::http::StatusCode;
use commerce::store::Batching;
use nix::sys::signal::Signal;
use serde_json::json;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::own_postgres::OwnPostgres;

/// The writes' deadline of the instances under test: short, so the tests are.
const DEADLINE: Duration = Duration::from_millis(1500);

fn batching(max_batch: usize) -> Batching {
    Batching {
        max_batch,
        deadline: DEADLINE,
        ..Batching::default()
    }
}

fn order(product: i64) -> serde_json::Value {
    json!({"items": [{"product_id": product, "quantity": 1}]})
}

/// Another session's transaction holding a product's row until it is rolled back.
async fn hold_product_row(
    app: &TestApp,
    product: i64,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = app.raw().postgres().begin().await.expect("begin");
    sqlx::query("SELECT id FROM products WHERE id = $1 FOR UPDATE")
        .bind(product)
        .execute(&mut *lock)
        .await
        .expect("lock the row");
    lock
}

/// How long the session holds the row: far past the deadline, as a stuck session would.
const HOLD: Duration = Duration::from_secs(5);

/// A session holds product A's row (an admin's forgotten transaction) far longer than the
/// deadline while users order A and B: every order of B is stored while A is held, every
/// order of A is answered 503 before the lock goes, and none of them happens after it went.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_row_delays_only_the_orders_that_need_it() {
    if !postgres_available().await {
        return;
    }
    let app = TestApp::new(Backend::Postgres).await;
    let held = app.product("Held", 1_000, 100).await;
    let free = app.product("Free", 1_000, 100).await;
    for user in 1..=24 {
        app.charge(user, 100_000).await;
    }
    let instance = app.batching_instance(batching(64)).await;

    let lock = hold_product_row(&app, held).await;
    let locked_at = Instant::now();

    let calls = (1..=24).map(|user| {
        let product = if user <= 12 { held } else { free };
        app.post_to(&instance, "/api/v1/orders")
            .token(&app.token(user))
            .json(order(product))
    });
    let answers = concurrently(calls).await;
    let answered_within = locked_at.elapsed();
    assert!(
        answered_within < HOLD,
        "every order was answered while the row was still held (took {answered_within:?})"
    );
    tokio::time::sleep(HOLD.saturating_sub(locked_at.elapsed())).await;
    lock.rollback().await.expect("release the row");

    for (n, answer) in answers.iter().enumerate() {
        if n < 12 {
            answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
            assert!(answer.headers.contains_key("retry-after"));
        } else {
            assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        }
    }
    // Long enough for a write that was only delayed to land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stock = |id| format!("SELECT stock FROM products WHERE id = {id}");
    assert_eq!(
        app.scalar(&stock(held)).await,
        100,
        "no refused order took stock afterwards"
    );
    assert_eq!(app.scalar(&stock(free)).await, 88);
    for user in 1..=12 {
        assert_eq!(app.balance(user).await, 100_000, "user {user} paid nothing");
    }
    let orders_of_held = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM order_items WHERE product_id = {held}"
        ))
        .await;
    assert_eq!(orders_of_held, 0);
}

/// A caller who stops waiting (its request timed out, the client hung up) while its write waits
/// behind a held row never has that write carried out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_whose_caller_left_is_never_started() {
    if !postgres_available().await {
        return;
    }
    let app = TestApp::new(Backend::Postgres).await;
    let held = app.product("Held", 1_000, 10).await;
    app.charge(1, 10_000).await;
    let lock = hold_product_row(&app, held).await;

    let call = app
        .post("/api/v1/orders")
        .token(&app.token(1))
        .json(order(held))
        .send();
    let left = tokio::time::timeout(Duration::from_millis(300), call).await;
    assert!(
        left.is_err(),
        "the order could not be answered while the row was held"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    lock.rollback().await.expect("release the row");
    tokio::time::sleep(Duration::from_secs(1)).await;

    assert_eq!(app.balance(1).await, 10_000);
    let orders = app.scalar("SELECT COUNT(*) FROM orders").await;
    assert_eq!(orders, 0, "the order of a caller who left was carried out");
}

/// A session holds the row of a product in an order being cancelled: the cancellation (which
/// cannot know its rows before reading the order) meets the lock in the committer's batch, is
/// undone alone and answered 503 at the lock timeout, well before the deadline, while orders in
/// the same moment go through; once the row is free nothing of that cancellation happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancellation_behind_a_held_row_is_refused_in_time_and_never_carried_out() {
    if !postgres_available().await {
        return;
    }
    let app = TestApp::new(Backend::Postgres).await;
    let held = app.product("Held", 1_000, 10).await;
    let free = app.product("Free", 1_000, 100).await;
    for user in 1..=9 {
        app.charge(user, 10_000).await;
    }
    let instance = app.batching_instance(batching(64)).await;
    let placed = app
        .post_to(&instance, "/api/v1/orders")
        .token(&app.token(1))
        .json(order(held))
        .send()
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let id = placed.body["id"].as_i64().unwrap();

    let lock = hold_product_row(&app, held).await;
    let locked_at = Instant::now();
    let cancel = app
        .post_to(&instance, &format!("/api/v1/orders/{id}/cancel"))
        .token(&app.token(1))
        .header("Idempotency-Key", "cancel-held");
    let orders = (2..=9).map(|user| {
        app.post_to(&instance, "/api/v1/orders")
            .token(&app.token(user))
            .json(order(free))
    });
    let answers = concurrently(std::iter::once(cancel).chain(orders)).await;
    let answered_within = locked_at.elapsed();
    assert!(
        answered_within < DEADLINE,
        "the cancellation held up its batch (took {answered_within:?})"
    );
    answers[0].assert_problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    for answer in &answers[1..] {
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    }
    lock.rollback().await.expect("release the row");
    // Long enough for a cancellation that was only delayed to land.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let status = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM orders WHERE id = {id} AND status = 'PAID'"
        ))
        .await;
    assert_eq!(status, 1, "the refused cancellation was carried out later");
    assert_eq!(
        app.scalar(&format!("SELECT stock FROM products WHERE id = {held}"))
            .await,
        9
    );
    assert_eq!(app.balance(1).await, 9_000);
    // A 503 is not remembered: the retry with the same key cancels now.
    let retried = app
        .post_to(&instance, &format!("/api/v1/orders/{id}/cancel"))
        .token(&app.token(1))
        .header("Idempotency-Key", "cancel-held")
        .send()
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    assert_eq!(app.balance(1).await, 10_000);
}

/// A lone write (an admin's stock change) that meets a row another session holds is undone in
/// its savepoint and answered 503 at the lock timeout, long before its deadline; the orders
/// queued beside it commit, and the change never happens once the row is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lone_write_behind_a_held_row_is_refused_in_time_and_never_carried_out() {
    if !postgres_available().await {
        return;
    }
    let app = TestApp::new(Backend::Postgres).await;
    let held = app.product("Held", 1_000, 10).await;
    let free = app.product("Free", 1_000, 100).await;
    for user in 1..=8 {
        app.charge(user, 10_000).await;
    }
    let lock = hold_product_row(&app, held).await;
    let locked_at = Instant::now();
    let change = app
        .patch(&format!("/api/v1/admin/products/{held}"))
        .token(&app.admin())
        .json(json!({"stock": 50}));
    let orders = (1..=8).map(|user| {
        app.post("/api/v1/orders")
            .token(&app.token(user))
            .json(order(free))
    });
    let answers = concurrently(std::iter::once(change).chain(orders)).await;
    let answered_within = locked_at.elapsed();
    assert!(
        answered_within < Duration::from_secs(2),
        "the lone write held up its batch (took {answered_within:?})"
    );
    answers[0].assert_problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    for answer in &answers[1..] {
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    }
    lock.rollback().await.expect("release the row");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stock = |id| format!("SELECT stock FROM products WHERE id = {id}");
    assert_eq!(
        app.scalar(&stock(held)).await,
        10,
        "the refused change landed later"
    );
    assert_eq!(app.scalar(&stock(free)).await, 92);
}

crate::on_both_backends!(more_writes_than_fit_in_the_deadline_are_refused_at_once);

/// One write per commit and a short deadline: far more concurrent orders than can commit in
/// time. Each order has 100 lines and the deadline is 300 ms, so that even a disk whose flush
/// costs nothing (SQLite commits tiny transactions at over 100,000/s on such a machine) cannot
/// commit 1,500 of them one by one in time. The queue takes what fits; the rest hear 503 with
/// `Retry-After` at once instead of after the deadline; nothing answered 503 is stored,
/// everything answered 201 is.
async fn more_writes_than_fit_in_the_deadline_are_refused_at_once(backend: Backend) {
    const LINES: i64 = 100;
    const SHORT: Duration = Duration::from_millis(300);
    let app = TestApp::new(backend).await;
    let mut items = Vec::new();
    for n in 0..LINES {
        let product = app.product(&format!("Plenty {n}"), 10, 100_000).await;
        items.push(json!({"product_id": product, "quantity": 1}));
    }
    let order = json!({ "items": items });
    // Enough for every order (1,000 won each): a refusal can only be the queue's.
    app.charge(1, 1_000_000).await;
    app.charge(1, 1_000_000).await;
    let instance = app
        .batching_instance(Batching {
            deadline: SHORT,
            ..batching(1)
        })
        .await;
    let token = app.token(1);
    let calls: Vec<_> = (0..1500)
        .map(|_| {
            app.post_to(&instance, "/api/v1/orders")
                .token(&token)
                .json(order.clone())
        })
        .collect();
    let timed = calls.into_iter().map(|call| {
        tokio::spawn(async move {
            let sent = Instant::now();
            let answer = call.send().await;
            (answer, sent.elapsed())
        })
    });
    let mut answers = Vec::new();
    for task in timed.collect::<Vec<_>>() {
        answers.push(task.await.expect("request task"));
    }

    let placed: Vec<i64> = answers
        .iter()
        .filter(|(a, _)| a.status == StatusCode::CREATED)
        .map(|(a, _)| a.body["id"].as_i64().expect("an order id"))
        .collect();
    let refused: Vec<&(Response, Duration)> = answers
        .iter()
        .filter(|(a, _)| a.status != StatusCode::CREATED)
        .collect();
    for (answer, _) in &refused {
        answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
        assert!(answer.headers.contains_key("retry-after"));
    }
    assert!(
        !refused.is_empty(),
        "1,500 orders of 100 lines at once, one per commit, all fit in 300 ms?"
    );
    let fastest_refusal = refused.iter().map(|(_, took)| *took).min().unwrap();
    assert!(
        fastest_refusal < SHORT,
        "a refusal waited {fastest_refusal:?}: the queue has no bound"
    );
    // Whatever was late in landing has landed by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored = app.scalar("SELECT COUNT(*) FROM orders").await;
    assert_eq!(stored, placed.len() as i64, "a refused order was stored");
    for id in placed {
        let found = app
            .scalar(&format!("SELECT COUNT(*) FROM orders WHERE id = {id}"))
            .await;
        assert_eq!(found, 1, "order {id} was answered 201 but is not stored");
    }
    assert_eq!(
        app.balance(1).await,
        2_000_000 - 10 * LINES * stored,
        "the balance paid for exactly the stored orders"
    );
}

/// The database stops answering altogether (every PostgreSQL process stopped, as a frozen
/// machine) for longer than the deadline, under a load of keyed orders: readiness says 503
/// while writes wait, at most one batch of orders answered 503 is stored (the one whose COMMIT
/// may have been under way), every 201 is stored, and writes flow again after it resumes,
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_database_fails_writes_in_time_and_recovers() {
    const MAX_BATCH: usize = 64;
    let server = OwnPostgres::start();
    let app = TestApp::at_url(Backend::Postgres, &server.url()).await;
    let product = app.product("Plenty", 10, 1_000_000).await;
    app.charge(1, 1_000_000).await;
    let instance = app.batching_instance(batching(MAX_BATCH)).await;
    let token = app.token(1);

    enum Done {
        Order(Response),
        Ready(Option<StatusCode>, Instant),
    }
    let start = Instant::now();
    let (stop_at, resume_at, end) = (
        start + Duration::from_secs(1),
        start + Duration::from_secs(6),
        start + Duration::from_secs(9),
    );
    let (mut stopped, mut resumed) = (false, false);
    let mut next_ready_check = start;
    let mut tasks = tokio::task::JoinSet::new();
    let mut in_flight = 0;
    let mut orders = Vec::new();
    let mut readiness = Vec::new();
    let mut key = 0;
    while Instant::now() < end || !tasks.is_empty() {
        let now = Instant::now();
        if !stopped && now >= stop_at {
            server.signal_all(Signal::SIGSTOP);
            stopped = true;
        }
        if stopped && !resumed && now >= resume_at {
            server.signal_all(Signal::SIGCONT);
            resumed = true;
        }
        if now < end && now >= next_ready_check {
            next_ready_check = now + Duration::from_millis(250);
            let call = app.get_from(&instance, "/health/ready");
            tasks.spawn(async move {
                let status = tokio::time::timeout(Duration::from_secs(1), call.send())
                    .await
                    .ok()
                    .map(|r| r.status);
                Done::Ready(status, Instant::now())
            });
        }
        while now < end && in_flight < 16 {
            key += 1;
            in_flight += 1;
            let call = app
                .post_to(&instance, "/api/v1/orders")
                .token(&token)
                .header("idempotency-key", &format!("order-{key}"))
                .json(order(product));
            tasks.spawn(async move {
                let answer = call.send().await;
                if answer.status == StatusCode::SERVICE_UNAVAILABLE {
                    // As a client honouring Retry-After would, only quicker.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Done::Order(answer)
            });
        }
        let next = tokio::time::timeout(Duration::from_millis(100), tasks.join_next()).await;
        if let Ok(Some(done)) = next {
            match done.expect("task") {
                Done::Order(answer) => {
                    in_flight -= 1;
                    orders.push((answer, Instant::now()));
                }
                Done::Ready(status, at) => readiness.push((status, at)),
            }
        }
    }

    let not_ready_while_stopped = readiness.iter().any(|(status, at)| {
        *status == Some(StatusCode::SERVICE_UNAVAILABLE) && (stop_at..resume_at).contains(at)
    });
    assert!(
        not_ready_while_stopped,
        "readiness said 503 while writes stalled: {readiness:?}"
    );
    let placed: Vec<i64> = orders
        .iter()
        .filter(|(a, _)| a.status == StatusCode::CREATED)
        .map(|(a, _)| a.body["id"].as_i64().expect("an order id"))
        .collect();
    for (answer, _) in orders
        .iter()
        .filter(|(a, _)| a.status != StatusCode::CREATED)
    {
        answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    }
    assert!(
        orders
            .iter()
            .any(|(a, at)| a.status == StatusCode::CREATED && *at > resume_at),
        "orders are stored again after the database resumed, without a restart"
    );
    let stored = app.scalar("SELECT COUNT(*) FROM orders").await;
    for id in &placed {
        let found = app
            .scalar(&format!("SELECT COUNT(*) FROM orders WHERE id = {id}"))
            .await;
        assert_eq!(found, 1, "order {id} was answered 201 but is not stored");
    }
    let late = stored - placed.len() as i64;
    assert!(
        (0..=MAX_BATCH as i64).contains(&late),
        "{late} orders answered 503 were stored afterwards: more than the one batch that may \
         have been committing"
    );
    let mut ready = None;
    for _ in 0..50 {
        ready = Some(app.get_from(&instance, "/health/ready").send().await.status);
        if ready == Some(StatusCode::OK) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, Some(StatusCode::OK), "ready again once writes flow");
    drop(app);
    drop(server);
}
