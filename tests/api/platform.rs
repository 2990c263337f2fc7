use crate::harness::{concurrently, Backend, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use commerce::config::Settings;
use serde_json::{json, Value};
use std::time::Duration;

/// Popular answers are not cached here, so each read sees the latest statistics.
pub async fn platform_app(backend: Backend) -> TestApp {
    let settings = Settings {
        popular_cache_ttl: Duration::ZERO,
        ..crate::harness::settings()
    };
    TestApp::with_settings(backend, settings).await
}

/// Places a paid order; returns its id.
pub async fn buy(app: &TestApp, user: i64, product: i64, quantity: i64) -> i64 {
    app.charge(user, 1_000_000).await;
    let response = app
        .post("/api/v1/orders")
        .token(&app.token(user))
        .json(json!({"items": [{"product_id": product, "quantity": quantity}]}))
        .send()
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.body["id"].as_i64().unwrap()
}

pub async fn popular(app: &TestApp) -> Value {
    let response = app.get("/api/v1/products/popular").send().await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.body
}

/// (product id, sold quantity) in rank order.
pub fn ranking(popular: &Value) -> Vec<(i64, i64)> {
    popular["items"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            assert_eq!(item["rank"], i as i64 + 1);
            (
                item["product"]["id"].as_i64().unwrap(),
                item["sold_quantity"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().unwrap()
}

async fn an_orders_sale_shows_up_in_popular_products(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 1000, 100).await;
    let b = app.product("B", 1000, 100).await;
    let c = app.product("C", 1000, 100).await;
    buy(&app, 1, c, 3).await;
    buy(&app, 2, b, 5).await;
    buy(&app, 3, a, 3).await;
    assert_eq!(
        ranking(&popular(&app).await),
        vec![],
        "answered from statistics, not from orders"
    );
    assert_eq!(app.deliver_events().await, 3);
    let answer = popular(&app).await;
    assert_eq!(
        (answer["from"].as_str(), answer["to"].as_str()),
        (Some("2026-11-22"), Some("2026-11-24"))
    );
    assert_eq!(
        ranking(&answer),
        vec![(b, 5), (a, 3), (c, 3)],
        "ties go to the lower product id"
    );
    assert_eq!(
        answer["items"][0]["product"],
        json!({"id": b, "name": "B", "price": 1000, "stock": 95,
               "sale_starts_at": null, "sale_ends_at": null,
               "max_per_user": null})
    );
}

async fn popular_lists_the_top_five(backend: Backend) {
    let app = platform_app(backend).await;
    let mut products = Vec::new();
    for n in 1..=7 {
        let id = app.product(&format!("p{n}"), 100, 100).await;
        buy(&app, n, id, n).await;
        products.push(id);
    }
    app.deliver_events().await;
    let expected: Vec<(i64, i64)> = (3..=7)
        .rev()
        .map(|n| (products[n as usize - 1], n))
        .collect();
    assert_eq!(ranking(&popular(&app).await), expected);
}

async fn the_window_moves_at_midnight_in_the_shop_time_zone(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 100, 100).await;
    app.clock.set(at("2026-11-24T14:59:59Z")); // 23:59:59 on the 24th in Seoul
    buy(&app, 1, a, 2).await;
    app.deliver_events().await;
    assert_eq!(ranking(&popular(&app).await), vec![(a, 2)]);
    app.clock.set(at("2026-11-26T14:59:59Z")); // 23:59:59 on the 26th: the window is 24..26
    let answer = popular(&app).await;
    assert_eq!(answer["from"], "2026-11-24");
    assert_eq!(ranking(&answer), vec![(a, 2)]);
    app.clock.set(at("2026-11-26T15:00:00Z")); // midnight of the 27th: the 24th has left
    let answer = popular(&app).await;
    assert_eq!(
        (answer["from"].as_str(), answer["to"].as_str()),
        (Some("2026-11-25"), Some("2026-11-27"))
    );
    assert_eq!(ranking(&answer), vec![]);
}

async fn a_redelivered_event_is_counted_once(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 100, 100).await;
    buy(&app, 1, a, 4).await;
    assert_eq!(app.deliver_events().await, 1);
    app.execute("UPDATE outbox SET delivered_at = NULL").await;
    assert_eq!(app.deliver_events().await, 1, "delivered again");
    assert_eq!(ranking(&popular(&app).await), vec![(a, 4)]);
    assert_eq!(
        app.scalar("SELECT quantity FROM platform_sales_live").await,
        4
    );
}

async fn processed_events_are_forgotten_after_eight_days(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 100, 100).await;
    buy(&app, 1, a, 1).await;
    app.deliver_events().await;
    app.clock.advance(chrono::Duration::days(1));
    buy(&app, 2, a, 1).await;
    app.deliver_events().await;
    let newer = app
        .scalar("SELECT MAX(event_id) FROM platform_processed_events")
        .await;
    // Eight days and an hour after the first event, seven days and an hour after the second.
    app.clock
        .advance(chrono::Duration::days(7) + chrono::Duration::hours(1));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let scheduler = tokio::spawn(commerce::platform::daily_job(
        app.state.platform(),
        shutdown.clone(),
    ));
    let remaining = || app.scalar("SELECT COUNT(*) FROM platform_processed_events");
    let started = std::time::Instant::now();
    while remaining().await > 1 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the scheduler did not prune"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    scheduler.await.unwrap();
    assert_eq!(
        app.scalar("SELECT MIN(event_id) FROM platform_processed_events")
            .await,
        newer,
        "the younger record stays"
    );
}

async fn an_unreadable_event_does_not_hold_back_the_ones_after_it(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 100, 100).await;
    app.execute("INSERT INTO outbox (topic, payload, created_at) VALUES ('order.paid', '{\"not\": \"an order\"}', CURRENT_TIMESTAMP)").await;
    buy(&app, 1, a, 2).await;
    assert_eq!(app.deliver_events().await, 2);
    assert_eq!(ranking(&popular(&app).await), vec![(a, 2)]);
    assert_eq!(app.metric("platform_events_rejected_total").await, 1.0);
}

async fn an_event_committed_before_a_crash_is_delivered_after_restart(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 100, 100).await;
    buy(&app, 1, a, 2).await;
    // The process dies after the commit, before the relay ran.
    let app = app.restart().await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
            .await,
        1
    );
    assert_eq!(app.deliver_events().await, 1);
    assert_eq!(ranking(&popular(&app).await), vec![(a, 2)]);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
            .await,
        0
    );
}

async fn the_relay_delivers_soon_after_commit(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 100, 100).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let relay = tokio::spawn(commerce::outbox::relay(
        app.state.relay(),
        std::sync::Arc::new(commerce::outbox::Transport::InProcess),
        shutdown.clone(),
    ));
    buy(&app, 1, a, 3).await;
    // Delivered by the running relay, not by the test: woken by the commit, or by its 250 ms
    // poll at the latest. The bound only rules out "never", with room for a loaded machine.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen = vec![];
    while tokio::time::Instant::now() < deadline {
        seen = ranking(&popular(&app).await);
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, vec![(a, 3)]);
    shutdown.cancel();
    relay.await.unwrap();
}

async fn a_product_whose_sales_were_all_cancelled_is_not_listed(backend: Backend) {
    let app = platform_app(backend).await;
    let kept = app.product("kept", 1000, 100).await;
    let gone = app.product("gone", 1000, 100).await;
    app.clock.set(at("2026-11-23T01:00:00Z")); // the 23rd in Seoul
    buy(&app, 1, kept, 2).await;
    let order = buy(&app, 2, gone, 3).await;
    let cancelled = app
        .post(&format!("/api/v1/orders/{order}/cancel"))
        .token(&app.token(2))
        .send()
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(app.deliver_events().await, 3);
    let only_kept = json!([{"product_id": kept, "quantity": 2, "amount": 2000}]);
    let day = || {
        app.get("/api/v1/admin/stats/daily-sales?date=2026-11-23")
            .token(&app.admin())
            .send()
    };
    assert_eq!(ranking(&popular(&app).await), vec![(kept, 2)]);
    assert_eq!(day().await.body["items"], only_kept, "live figures");

    app.clock.set(at("2026-11-24T03:00:00Z"));
    let ran = run_day(&app, &app.admin(), "2026-11-23").await;
    assert_eq!(
        ran.body,
        json!({"date": "2026-11-23", "products": 1, "quantity": 2, "amount": 2000})
    );
    let finalized = day().await.body;
    assert_eq!(
        (&finalized["finalized"], &finalized["items"]),
        (&json!(true), &only_kept)
    );
    assert_eq!(ranking(&popular(&app).await), vec![(kept, 2)]);
}

async fn run_day(app: &TestApp, token: &str, date: &str) -> crate::harness::Response {
    app.post(&format!("/api/v1/admin/jobs/daily-sales?date={date}"))
        .token(token)
        .send()
        .await
}

async fn the_daily_job_stores_the_days_figures_from_the_orders(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 1000, 100).await;
    let b = app.product("B", 250, 100).await;
    app.clock.set(at("2026-11-22T15:00:00Z")); // the first instant of the 23rd in Seoul
    buy(&app, 1, a, 2).await;
    buy(&app, 2, b, 4).await;
    app.clock.set(at("2026-11-23T14:59:59Z")); // its last second
    buy(&app, 3, a, 1).await;
    app.clock.set(at("2026-11-23T15:00:00Z")); // the 24th: not the 23rd
    buy(&app, 4, a, 10).await;
    app.clock.set(at("2026-11-24T03:00:00Z"));
    let admin = app.admin();
    let live = app
        .get("/api/v1/admin/stats/daily-sales?date=2026-11-23")
        .token(&admin)
        .send()
        .await;
    assert_eq!(
        live.body,
        json!({"date": "2026-11-23", "finalized": false, "items": []}),
        "no events delivered yet"
    );

    let ran = run_day(&app, &admin, "2026-11-23").await;
    assert_eq!(ran.status, StatusCode::OK, "{}", ran.text);
    assert_eq!(
        ran.body,
        json!({"date": "2026-11-23", "products": 2, "quantity": 7, "amount": 4000})
    );
    let stats = app
        .get("/api/v1/admin/stats/daily-sales?date=2026-11-23")
        .token(&admin)
        .send()
        .await;
    let expected = json!({"date": "2026-11-23", "finalized": true, "items": [
        {"product_id": a, "quantity": 3, "amount": 3000}, {"product_id": b, "quantity": 4, "amount": 1000}]});
    assert_eq!(stats.body, expected);
    // Rerunning gives the same figures, and late event delivery does not change them.
    app.deliver_events().await;
    assert_eq!(run_day(&app, &admin, "2026-11-23").await.body, ran.body);
    let again = app
        .get("/api/v1/admin/stats/daily-sales?date=2026-11-23")
        .token(&admin)
        .send()
        .await;
    assert_eq!(again.body, expected);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM platform_daily_sales")
            .await,
        2
    );
    // Popular counts the finalized day from the job's figures and today from live ones.
    assert_eq!(ranking(&popular(&app).await), vec![(a, 13), (b, 4)]);
}

async fn the_daily_job_refuses_bad_and_unfinished_days(backend: Backend) {
    let app = platform_app(backend).await;
    let admin = app.admin();
    for date in ["2026-13-01", "yesterday", "2026-11-24", "2026-12-01", ""] {
        run_day(&app, &admin, date)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    app.post("/api/v1/admin/jobs/daily-sales")
        .token(&admin)
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    app.get("/api/v1/admin/stats/daily-sales?date=11/23/2026")
        .token(&admin)
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    run_day(&app, &app.token(5), "2026-11-23")
        .await
        .assert_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    app.post("/api/v1/admin/jobs/daily-sales?date=2026-11-23")
        .send()
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM platform_daily_runs").await,
        0
    );
}

async fn concurrent_runs_of_the_job_on_two_instances_give_one_result(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 1000, 1000).await;
    app.clock.set(at("2026-11-23T03:00:00Z"));
    for user in 1..=5 {
        buy(&app, user, a, user).await;
    }
    app.clock.set(at("2026-11-24T03:00:00Z"));
    let other = app.second_instance().await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let runs: Vec<_> = (0..10)
        .map(|i| {
            let state = if i % 2 == 0 {
                app.state.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                commerce::platform::run_day(&state.platform(), day)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for run in runs {
        let summary = run.await.unwrap();
        assert_eq!(
            (summary.products, summary.quantity, summary.amount),
            (1, 15, 15_000)
        );
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM platform_daily_sales")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT quantity FROM platform_daily_sales")
            .await,
        15
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM platform_daily_runs").await,
        1
    );
    let http_runs = concurrently((0..6).map(|_| {
        app.post("/api/v1/admin/jobs/daily-sales?date=2026-11-23")
            .token(&app.admin())
    }))
    .await;
    assert!(http_runs
        .iter()
        .all(|r| r.status == StatusCode::OK && r.body == http_runs[0].body));
}

async fn the_scheduler_catches_up_missed_days_after_the_job_time(backend: Backend) {
    let app = platform_app(backend).await;
    let a = app.product("A", 100, 100).await;
    app.clock.set(at("2026-11-20T03:00:00Z"));
    buy(&app, 1, a, 2).await;
    app.clock.set(at("2026-11-23T03:00:00Z"));
    buy(&app, 2, a, 5).await;
    // 00:04 on the 24th in Seoul: before the 00:05 job time the 23rd is not due yet.
    app.clock.set(at("2026-11-23T15:04:00Z"));
    let ran = commerce::platform::catch_up(&app.state.platform())
        .await
        .unwrap();
    assert_eq!(ran.last().unwrap().date.to_string(), "2026-11-22");
    assert_eq!(
        ran.len(),
        31,
        "a month of days is caught up on the first start"
    );
    app.clock.set(at("2026-11-23T15:05:00Z"));
    let ran = commerce::platform::catch_up(&app.state.platform())
        .await
        .unwrap();
    assert_eq!(ran.len(), 1);
    assert_eq!(
        (ran[0].date.to_string(), ran[0].quantity),
        ("2026-11-23".to_owned(), 5)
    );
    assert!(
        commerce::platform::catch_up(&app.state.platform())
            .await
            .unwrap()
            .is_empty(),
        "nothing runs twice"
    );
    let stats = app
        .get("/api/v1/admin/stats/daily-sales?date=2026-11-20")
        .token(&app.admin())
        .send()
        .await;
    assert_eq!(
        stats.body["items"],
        json!([{"product_id": a, "quantity": 2, "amount": 200}])
    );
}

on_both_backends!(
    an_orders_sale_shows_up_in_popular_products,
    popular_lists_the_top_five,
    the_window_moves_at_midnight_in_the_shop_time_zone,
    a_product_whose_sales_were_all_cancelled_is_not_listed,
    a_redelivered_event_is_counted_once,
    processed_events_are_forgotten_after_eight_days,
    an_unreadable_event_does_not_hold_back_the_ones_after_it,
    an_event_committed_before_a_crash_is_delivered_after_restart,
    the_relay_delivers_soon_after_commit,
    the_daily_job_stores_the_days_figures_from_the_orders,
    the_daily_job_refuses_bad_and_unfinished_days,
    concurrent_runs_of_the_job_on_two_instances_give_one_result,
    the_scheduler_catches_up_missed_days_after_the_job_time,
);
