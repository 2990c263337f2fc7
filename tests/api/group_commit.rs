//! Writes that wait together commit together (SQLite's group commit; PostgreSQL commits each on
//! its own): every write gets its own answer, a refused one leaves no trace, and its
//! idempotent replay is exact.

use crate::harness::{concurrently, count_code, count_status, Backend, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;
use serde_json::json;

/// `db_write_batch_size`'s count (batches committed) and sum (writes in them), process-wide.
async fn batches(app: &TestApp) -> (f64, f64) {
    let text = app.get("/metrics").send().await.text;
    let read = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        read("db_write_batch_size_count"),
        read("db_write_batch_size_sum"),
    )
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
    assert_eq!(count_code(&answers, "OUT_OF_STOCK"), 60);
    if backend == Backend::Sqlite {
        // More writes than batches: some of the rush shared a commit. (Other tests of this
        // process add to both figures, never to the difference alone.)
        let (batches, writes) = (after.0 - before.0, after.1 - before.1);
        assert!(
            writes > batches,
            "{writes} writes in {batches} batches: nothing was committed together"
        );
    }

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
    let won: Vec<bool> = futures::future::join_all(issues)
        .await
        .iter()
        .map(|issued| issued.is_ok())
        .collect();
    let winners: Vec<usize> = (0..100).filter(|&n| won[n]).collect();
    assert_eq!(winners, (0..10).collect::<Vec<_>>());
}

on_both_backends!(
    a_rush_commits_together_and_each_refusal_stays_alone,
    the_earliest_writes_win
);
