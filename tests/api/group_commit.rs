//! Writes that wait together commit together (SQLite's group commit; PostgreSQL commits each on
//! its own): every write gets its own answer, a refused one leaves no trace, and its
//! idempotent replay is exact.

use crate::harness::{concurrently, count_status, Backend, Response, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;
use commerce::store::Batching;
use serde_json::json;

/// `db_write_batch_size`'s count (batches committed) and sum (writes in them), and
/// `db_commits_total`, of this test's own recorder.
async fn batches(app: &TestApp) -> (f64, f64, f64) {
    (
        app.metric("db_write_batch_size_count").await,
        app.metric("db_write_batch_size_sum").await,
        app.metric("db_commits_total").await,
    )
}

/// Every answer of a rush that did not win is exactly this refusal (409 `code`).
#[track_caller]
fn assert_refused_as(answers: &[Response], won: StatusCode, code: &str) {
    for answer in answers.iter().filter(|answer| answer.status != won) {
        answer.assert_problem(StatusCode::CONFLICT, code);
    }
}

async fn a_rush_commits_together_and_each_refusal_stays_alone(backend: Backend) {
    let app = TestApp::new(backend).await;
    let product = app.product("Hot", 1000, 60).await;
    let users: Vec<i64> = (1..=120).collect();
    for &user in &users {
        app.charge(user, 5000).await;
    }
    let order = |user: i64| {
        app.post("/api/v1/orders")
            .token(&app.token(user))
            .header("idempotency-key", &format!("rush-{user}"))
            .json(json!({"items": [{"product_id": product, "quantity": 1}]}))
    };

    let before = batches(&app).await;
    let answers = concurrently(users.iter().map(|&user| order(user))).await;
    let after = batches(&app).await;
    assert_eq!(count_status(&answers, StatusCode::CREATED), 60);
    assert_refused_as(&answers, StatusCode::CREATED, "OUT_OF_STOCK");
    // More writes than batches: some of the rush shared a commit.
    let (batches, writes) = (after.0 - before.0, after.1 - before.1);
    assert!(
        writes > batches,
        "{writes} writes in {batches} batches: nothing was committed together"
    );
    assert!(after.2 >= before.2 + batches, "each batch is a commit");

    // What was answered is what is stored, per user.
    for (&user, answer) in users.iter().zip(&answers) {
        let won = answer.status == StatusCode::CREATED;
        assert_eq!(app.balance(user).await, if won { 4000 } else { 5000 });
        let orders = app
            .scalar(&format!(
                "SELECT COUNT(*) FROM orders WHERE user_id = {user}"
            ))
            .await;
        assert_eq!(orders, won as i64);
    }
    let stock = app.get(&format!("/api/v1/products/{product}")).send().await;
    assert_eq!(stock.body["stock"], 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM balance_history WHERE kind = 'PAYMENT'")
            .await,
        60
    );

    // Each key replays its own first answer, a refusal included.
    let replays = concurrently(users.iter().map(|&user| order(user))).await;
    for (first, replay) in answers.iter().zip(&replays) {
        assert_eq!((replay.status, &replay.body), (first.status, &first.body));
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 60);
}

/// First come, first served: writes are decided in the order they reached the instance. The
/// issues are queued in a known order (each is queued when first polled, and `join_all` polls
/// them in order), so the earliest must win, on either backend.
async fn the_earliest_writes_win(backend: Backend) {
    let app = TestApp::new(backend).await;
    let coupon = crate::coupons::fixed_coupon(&app, 100, 10).await;
    let id = commerce::ids::CouponId::new(coupon).unwrap();
    let state = &app.state;
    let issues = (1..=100).map(|user| {
        let user = commerce::ids::UserId::new(user).unwrap();
        commerce::coupon::issue(
            &state.db,
            state.clock.as_ref(),
            &state.sold_out_coupons,
            user,
            id,
        )
    });
    let issued = futures::future::join_all(issues).await;
    let winners: Vec<usize> = (0..100).filter(|&n| issued[n].is_ok()).collect();
    assert_eq!(winners, (0..10).collect::<Vec<_>>());
    // Each later one is refused because the coupons are gone, not for any other reason.
    for (n, loser) in issued.iter().enumerate().skip(10) {
        assert!(
            matches!(loser, Err(commerce::coupon::CouponError::SoldOut(c)) if *c == id),
            "issue {n}: {loser:?}"
        );
    }
}

/// Two instances on one database, each batching with two committers: a coupon rush and a
/// hot-product rush split between them issue exactly the coupons there are and sell exactly the
/// stock, and what was answered is what is stored.
async fn two_batching_instances_never_oversell(backend: Backend) {
    let app = TestApp::new(backend).await;
    let batching = Batching {
        max_batch: 64,
        committers: 2,
        ..Batching::default()
    };
    let instances = [
        app.batching_instance(batching).await,
        app.batching_instance(batching).await,
    ];
    let coupon = crate::coupons::fixed_coupon(&app, 100, 100).await;
    let product = app.product("Hot", 1000, 100).await;
    let users: Vec<i64> = (1..=300).collect();
    for &user in &users {
        app.charge(user, 1000).await;
    }
    let on = |user: i64| &instances[user as usize % 2];

    let issues = concurrently(users.iter().map(|&user| {
        app.post_to(on(user), &format!("/api/v1/coupons/{coupon}/issue"))
            .token(&app.token(user))
    }))
    .await;
    let orders = concurrently(users.iter().map(|&user| {
        app.post_to(on(user), "/api/v1/orders")
            .token(&app.token(user))
            .json(json!({"items": [{"product_id": product, "quantity": 1}]}))
    }))
    .await;

    assert_eq!(count_status(&issues, StatusCode::CREATED), 100);
    assert_refused_as(&issues, StatusCode::CREATED, "COUPON_SOLD_OUT");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM user_coupons").await, 100);
    assert_eq!(
        app.scalar(&format!(
            "SELECT issued_quantity FROM coupons WHERE id = {coupon}"
        ))
        .await,
        100
    );
    assert_eq!(count_status(&orders, StatusCode::CREATED), 100);
    assert_refused_as(&orders, StatusCode::CREATED, "OUT_OF_STOCK");
    assert_eq!(
        app.scalar(&format!("SELECT stock FROM products WHERE id = {product}"))
            .await,
        0
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 100);
    for (&user, answer) in users.iter().zip(&orders) {
        let won = answer.status == StatusCode::CREATED;
        assert_eq!(
            app.balance(user).await,
            if won { 0 } else { 1000 },
            "user {user}"
        );
    }
}

on_both_backends!(
    two_batching_instances_never_oversell,
    a_rush_commits_together_and_each_refusal_stays_alone,
    the_earliest_writes_win
);
