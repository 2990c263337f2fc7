//! The per-user write limit: a burst passes, the rest is `429 RATE_LIMITED` with nothing
//! stored, and only the writer who went over it is held back.

use crate::harness::{concurrently, count_status, settings, Backend, Response, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;
use commerce::config::Settings;
use commerce::http::WriteQuota;
use serde_json::json;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

fn limited(per_second: u32, burst: u32) -> Settings {
    Settings {
        user_write_quota: Some(WriteQuota {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }),
        ..settings()
    }
}

#[track_caller]
fn assert_rate_limited(response: &Response) {
    response.assert_problem(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let wait: u64 = response.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(wait >= 1, "Retry-After: {wait}");
}

fn charges(app: &TestApp, user: i64, count: usize) -> Vec<crate::harness::Call> {
    (0..count)
        .map(|_| {
            app.post("/api/v1/me/balance/charges")
                .token(&app.token(user))
                .json(json!({"amount": 1000}))
        })
        .collect()
}

/// Sends `count` charges of one user at once under a quota of `per_second` with bursts of
/// `burst`, and checks how many passed against the time they took: the whole burst, plus at
/// most what the bucket refilled meanwhile (the limiter's clock moved no more than this test's
/// between the first write and the last). A loaded machine only widens the bound.
async fn burst_of_charges(
    app: &TestApp,
    count: usize,
    per_second: u32,
    burst: u32,
) -> Vec<Response> {
    let started = Instant::now();
    let responses = concurrently(charges(app, 1, count)).await;
    let refilled = (started.elapsed().as_secs_f64() * f64::from(per_second)).ceil() as usize;
    let ok = count_status(&responses, StatusCode::OK);
    let most = (burst as usize + refilled).min(count);
    assert!(
        (burst as usize..=most).contains(&ok),
        "{ok} charges passed a burst of {burst} and {refilled} refilled"
    );
    responses
}

async fn a_user_past_the_burst_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::with_settings(backend, limited(1, 5)).await;
    let responses = burst_of_charges(&app, 40, 1, 5).await;
    let ok = count_status(&responses, StatusCode::OK);
    for response in responses.iter().filter(|r| r.status != StatusCode::OK) {
        assert_rate_limited(response);
    }
    let stored = i64::try_from(ok).unwrap();
    assert_eq!(app.balance(1).await, 1000 * stored);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM balance_history").await,
        stored
    );

    // At the same moment another user writes, and the limited one still reads.
    app.charge(2, 700).await;
    assert_eq!(app.balance(2).await, 700);
    let read = app
        .get("/api/v1/me/balance")
        .token(&app.token(1))
        .send()
        .await;
    assert_eq!(read.status, StatusCode::OK);
}

async fn every_kind_of_user_write_is_limited_and_admin_writes_are_not(backend: Backend) {
    let app = TestApp::with_settings(backend, limited(1, 1)).await;
    let product = app.product("Tea", 1000, 50).await;
    let coupon = crate::coupons::fixed_coupon(&app, 100, 10).await;

    // A user's one write of this second, then one of each kind: all refused, as long as the
    // limiter's clock did not move by its refill period (1 s) meanwhile. A loaded machine may
    // take that long; such a round proves nothing and is played again by another user.
    let round = |user: i64| {
        let app = &app;
        async move {
            let started = Instant::now();
            app.charge(user, 5000).await;
            let token = app.token(user);
            let order = app
                .post("/api/v1/orders")
                .token(&token)
                .json(json!({"items": [{"product_id": product, "quantity": 1}]}));
            let issue = app
                .post(&format!("/api/v1/coupons/{coupon}/issue"))
                .token(&token);
            let cancel = app.post("/api/v1/orders/1/cancel").token(&token);
            let charge = charges(app, user, 1).pop().unwrap();
            let mut answers = Vec::new();
            for call in [order, issue, cancel, charge] {
                answers.push(call.send().await);
            }
            (started.elapsed() < Duration::from_secs(1)).then_some(answers)
        }
    };
    let mut refused = None;
    for user in 1..=5 {
        if let Some(answers) = round(user).await {
            refused = Some((user, answers));
            break;
        }
    }
    let (user, answers) = refused.expect("no round was faster than the refill period of 1 s");
    for answer in &answers {
        assert_rate_limited(answer);
    }
    let mine = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE user_id = {user}");
    assert_eq!(app.scalar(&mine("orders")).await, 0);
    assert_eq!(app.scalar(&mine("user_coupons")).await, 0);
    assert_eq!(app.balance(user).await, 5000);

    // Admins are not limited: thirty products at once all go in.
    let creates = (0..30).map(|n| {
        app.post("/api/v1/admin/products")
            .token(&app.admin())
            .json(json!({"name": format!("p{n}"), "price": 100, "stock": 1}))
    });
    let created = concurrently(creates).await;
    assert_eq!(count_status(&created, StatusCode::CREATED), 30);
}

/// The documented default, 10 a second with bursts of 20, is what a server gets unless told.
async fn the_default_limit_is_a_burst_of_twenty(backend: Backend) {
    let app = TestApp::with_settings(backend, Settings::default()).await;
    let responses = burst_of_charges(&app, 60, 10, 20).await;
    let ok = count_status(&responses, StatusCode::OK);
    assert_eq!(
        count_status(&responses, StatusCode::TOO_MANY_REQUESTS),
        60 - ok
    );
    assert_eq!(app.balance(1).await, 1000 * i64::try_from(ok).unwrap());
}

/// `COMMERCE_USER_WRITES_PER_SECOND=0` turns the limit off.
async fn without_a_limit_every_write_goes_in(backend: Backend) {
    let app = TestApp::with_settings(backend, settings()).await;
    let responses = concurrently(charges(&app, 1, 60)).await;
    assert_eq!(count_status(&responses, StatusCode::OK), 60);
    assert_eq!(app.balance(1).await, 60_000);
}

on_both_backends!(
    a_user_past_the_burst_is_refused_and_nothing_is_stored,
    every_kind_of_user_write_is_limited_and_admin_writes_are_not,
    the_default_limit_is_a_burst_of_twenty,
    without_a_limit_every_write_goes_in,
);
