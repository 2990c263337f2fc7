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

/// Batches by demand: hundreds of writes waiting form one batch far past 64, and it still decides
/// them in arrival order, each alone: a refused write (a second issue to the same user, an order
/// the balance cannot pay) takes nothing from anyone behind it.
async fn a_batch_of_hundreds_keeps_arrival_order_and_isolates_refusals(backend: Backend) {
    let app = TestApp::new(backend).await;
    let big_batches = || async {
        app.metric("db_write_batch_size_count").await
            - app.metric(r#"db_write_batch_size_bucket{le="64"}"#).await
    };
    let before = big_batches().await;

    // 500 issues of 300 coupons, queued in a known order: users 1..=400, users 1..=100 twice
    // in a row. The second try of each is refused and must not use up a coupon, so users
    // 1..=300 win and 301..=400 find it sold out.
    let coupon = crate::coupons::fixed_coupon(&app, 100, 300).await;
    let id = commerce::ids::CouponId::new(coupon).unwrap();
    let queue: Vec<i64> = (1..=400)
        .flat_map(|user| {
            if user <= 100 {
                vec![user, user]
            } else {
                vec![user]
            }
        })
        .collect();
    let state = &app.state;
    let issued = futures::future::join_all(queue.iter().map(|&user| {
        let user = commerce::ids::UserId::new(user).unwrap();
        commerce::coupon::issue(
            &state.db,
            state.clock.as_ref(),
            &state.sold_out_coupons,
            user,
            id,
        )
    }))
    .await;
    use commerce::coupon::CouponError::{AlreadyIssued, SoldOut};
    let mut seen = std::collections::HashSet::new();
    for (&user, outcome) in queue.iter().zip(&issued) {
        let first_try = seen.insert(user);
        match outcome {
            Ok(_) => assert!(first_try && user <= 300, "user {user} won"),
            Err(AlreadyIssued(_)) => assert!(!first_try, "user {user}: {outcome:?}"),
            Err(SoldOut(_)) => assert!(first_try && user > 300, "user {user}: {outcome:?}"),
            Err(other) => panic!("user {user}: {other}"),
        }
    }
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM user_coupons WHERE coupon_id = {coupon} AND user_id <= 300"
        ))
        .await,
        300
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT issued_quantity FROM coupons WHERE id = {coupon}"
        ))
        .await,
        300
    );

    // 500 orders for 200 units; every fifth buyer cannot pay. Their refusals leave the stock
    // to the others: exactly 200 of the 400 who can pay win, and what each was told is stored.
    let product = app.product("Hot", 1000, 200).await;
    let buyers: Vec<i64> = (1001..=1500).collect();
    let can_pay = |user: i64| user % 5 != 0;
    for &user in buyers.iter().filter(|&&user| can_pay(user)) {
        app.charge(user, 1000).await;
    }
    let orders = concurrently(buyers.iter().map(|&user| {
        app.post("/api/v1/orders")
            .token(&app.token(user))
            .json(json!({"items": [{"product_id": product, "quantity": 1}]}))
    }))
    .await;
    assert_eq!(count_status(&orders, StatusCode::CREATED), 200);
    let mut unpaid = 0;
    for (&user, answer) in buyers.iter().zip(&orders) {
        let won = answer.status == StatusCode::CREATED;
        // Stock is checked first: one who cannot pay and comes after the last unit hears that.
        let code = answer.body["code"].as_str().unwrap_or_default();
        if !can_pay(user) {
            assert!(!won, "user {user} won without the money");
            assert!(
                ["INSUFFICIENT_BALANCE", "OUT_OF_STOCK"].contains(&code),
                "user {user}: {}",
                answer.text
            );
            unpaid += usize::from(code == "INSUFFICIENT_BALANCE");
        } else if !won {
            answer.assert_problem(StatusCode::CONFLICT, "OUT_OF_STOCK");
        }
        let paid = if won { 1000 } else { 0 };
        let charged = if can_pay(user) { 1000 } else { 0 };
        assert_eq!(app.balance(user).await, charged - paid, "user {user}");
    }
    assert_eq!(
        app.scalar(&format!("SELECT stock FROM products WHERE id = {product}"))
            .await,
        0
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 200);
    assert!(
        unpaid > 0,
        "no order was refused for the balance while stock was left"
    );
    assert!(
        big_batches().await > before,
        "no batch held more than 64 writes"
    );
}

on_both_backends!(
    a_batch_of_hundreds_keeps_arrival_order_and_isolates_refusals,
    two_batching_instances_never_oversell,
    a_rush_commits_together_and_each_refusal_stays_alone,
    the_earliest_writes_win
);
