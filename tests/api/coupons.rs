use crate::harness::{concurrently, count_code, count_status, Backend, Response, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;
use serde_json::{json, Value};

pub async fn create_coupon(app: &TestApp, body: Value) -> i64 {
    let response = app
        .post("/api/v1/admin/coupons")
        .token(&app.admin())
        .json(body)
        .send()
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.body["id"].as_i64().unwrap()
}

pub async fn fixed_coupon(app: &TestApp, discount: i64, quantity: i64) -> i64 {
    create_coupon(
        app,
        json!({"name": "Flash", "discount_type": "FIXED", "discount_value": discount, "total_quantity": quantity, "valid_days": 7}),
    )
    .await
}

pub async fn issue(app: &TestApp, user: i64, coupon: i64) -> Response {
    app.post(&format!("/api/v1/coupons/{coupon}/issue"))
        .token(&app.token(user))
        .send()
        .await
}

/// Issues a coupon and returns the user coupon id.
pub async fn issued(app: &TestApp, user: i64, coupon: i64) -> i64 {
    let response = issue(app, user, coupon).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.body["id"].as_i64().unwrap()
}

async fn an_admin_creates_a_coupon_and_anyone_reads_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = create_coupon(
        &app,
        json!({"name": "10% off", "discount_type": "RATE", "discount_value": 10, "total_quantity": 100,
               "valid_days": 3, "min_order_amount": 20000,
               "issue_starts_at": "2026-11-24T09:00:00+09:00", "issue_ends_at": "2026-11-25T00:00:00+09:00"}),
    )
    .await;
    let read = app.get(&format!("/api/v1/coupons/{id}")).send().await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(
        read.body,
        json!({"id": id, "name": "10% off", "discount_type": "RATE", "discount_value": 10, "min_order_amount": 20000,
               "total_quantity": 100, "issued_quantity": 0, "remaining_quantity": 100,
               "issue_starts_at": "2026-11-24T00:00:00Z", "issue_ends_at": "2026-11-24T15:00:00Z", "valid_days": 3})
    );
}

async fn coupon_fields_are_validated(backend: Backend) {
    let app = TestApp::new(backend).await;
    let base = json!({"name": "c", "discount_type": "FIXED", "discount_value": 1000, "total_quantity": 10, "valid_days": 7});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("valid_days");
    let bad = [
        with("name", json!("")),
        with("discount_type", json!("BOGO")),
        with("discount_value", json!(0)),
        json!({"name": "c", "discount_type": "RATE", "discount_value": 101, "total_quantity": 10, "valid_days": 7}),
        with("total_quantity", json!(0)),
        with("valid_days", json!(0)),
        with("min_order_amount", json!(-1)),
        with("issue_starts_at", json!("2026-11-24 09:00")),
        json!({"name": "c", "discount_type": "FIXED", "discount_value": 1, "total_quantity": 1, "valid_days": 1,
               "issue_starts_at": "2026-11-25T00:00:00Z", "issue_ends_at": "2026-11-24T00:00:00Z"}),
        with("color", json!("red")),
        missing,
    ];
    for body in bad {
        let response = app
            .post("/api/v1/admin/coupons")
            .token(&app.admin())
            .json(body.clone())
            .send()
            .await;
        response.assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    app.post("/api/v1/admin/coupons")
        .token(&app.token(5))
        .json(base)
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM coupons").await, 0);
}

async fn a_missing_coupon_is_coupon_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.get("/api/v1/coupons/999")
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "COUPON_NOT_FOUND");
    issue(&app, 1, 999)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "COUPON_NOT_FOUND");
    app.get("/api/v1/coupons/x")
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
}

async fn issuing_gives_the_user_an_available_coupon(backend: Backend) {
    let app = TestApp::new(backend).await;
    let coupon = fixed_coupon(&app, 3000, 10).await;
    let response = issue(&app, 7, coupon).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.body["coupon_id"], coupon);
    assert_eq!(response.body["status"], "AVAILABLE");
    assert_eq!(response.body["issued_at"], "2026-11-24T03:00:00Z");
    assert_eq!(response.body["expires_at"], "2026-12-01T03:00:00Z");
    assert_eq!(response.body["used_at"], Value::Null);
    assert_eq!(response.body["coupon"]["remaining_quantity"], 9);
    let read = app.get(&format!("/api/v1/coupons/{coupon}")).send().await;
    assert_eq!(read.body["issued_quantity"], 1);

    let mine = app
        .get("/api/v1/me/coupons")
        .token(&app.token(7))
        .send()
        .await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine.body["items"][0]["id"], response.body["id"]);
    assert_eq!(mine.body["items"][0]["coupon"]["name"], "Flash");
    let others = app
        .get("/api/v1/me/coupons")
        .token(&app.token(8))
        .send()
        .await;
    assert_eq!(others.body["items"], json!([]));
}

async fn a_coupon_is_issued_once_per_user(backend: Backend) {
    let app = TestApp::new(backend).await;
    let coupon = fixed_coupon(&app, 3000, 10).await;
    issued(&app, 7, coupon).await;
    issue(&app, 7, coupon)
        .await
        .assert_problem(StatusCode::CONFLICT, "COUPON_ALREADY_ISSUED");
    assert_eq!(app.scalar("SELECT issued_quantity FROM coupons").await, 1);
}

async fn a_sold_out_coupon_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let coupon = fixed_coupon(&app, 3000, 2).await;
    issued(&app, 1, coupon).await;
    issued(&app, 2, coupon).await;
    issue(&app, 3, coupon)
        .await
        .assert_problem(StatusCode::CONFLICT, "COUPON_SOLD_OUT");
    // Once sold out, answers come without a write, and stay the same as before.
    issue(&app, 4, coupon)
        .await
        .assert_problem(StatusCode::CONFLICT, "COUPON_SOLD_OUT");
    issue(&app, 1, coupon)
        .await
        .assert_problem(StatusCode::CONFLICT, "COUPON_ALREADY_ISSUED");
    let read = app.get(&format!("/api/v1/coupons/{coupon}")).send().await;
    assert_eq!(read.body["remaining_quantity"], 0);
}

async fn coupons_issue_only_inside_their_window(backend: Backend) {
    let app = TestApp::new(backend).await;
    let coupon = create_coupon(
        &app,
        json!({"name": "Window", "discount_type": "FIXED", "discount_value": 100, "total_quantity": 10, "valid_days": 1,
               "issue_starts_at": "2026-11-24T04:00:00Z", "issue_ends_at": "2026-11-24T05:00:00Z"}),
    )
    .await;
    issue(&app, 1, coupon)
        .await
        .assert_problem(StatusCode::CONFLICT, "COUPON_NOT_ISSUABLE");
    app.clock.set("2026-11-24T04:00:00Z".parse().unwrap());
    issued(&app, 1, coupon).await;
    app.clock.set("2026-11-24T05:00:00Z".parse().unwrap());
    issue(&app, 2, coupon)
        .await
        .assert_problem(StatusCode::CONFLICT, "COUPON_NOT_ISSUABLE");
    assert_eq!(app.scalar("SELECT issued_quantity FROM coupons").await, 1);
}

fn listed_ids(response: &Response) -> Vec<i64> {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

/// `GET /coupons` lists a campaign exactly when issuing it would succeed.
async fn the_coupon_list_holds_exactly_the_issuable_ones(backend: Backend) {
    let app = TestApp::new(backend).await; // now: 2026-11-24T03:00:00Z
    let windowed = |name: &str, starts: Value, ends: Value| {
        json!({"name": name, "discount_type": "FIXED", "discount_value": 100, "total_quantity": 5,
               "valid_days": 1, "issue_starts_at": starts, "issue_ends_at": ends})
    };
    let open = fixed_coupon(&app, 500, 5).await;
    let sold_out = fixed_coupon(&app, 500, 1).await;
    issued(&app, 1, sold_out).await;
    let not_yet = create_coupon(
        &app,
        windowed("Later", json!("2026-11-24T03:00:01Z"), Value::Null),
    )
    .await;
    let opens_now = create_coupon(
        &app,
        windowed("Now", json!("2026-11-24T03:00:00Z"), Value::Null),
    )
    .await;
    let closed = create_coupon(
        &app,
        windowed("Over", Value::Null, json!("2026-11-24T03:00:00Z")),
    )
    .await;
    let closing = create_coupon(
        &app,
        windowed("Soon over", Value::Null, json!("2026-11-24T03:00:01Z")),
    )
    .await;

    let listed = app.get("/api/v1/coupons").send().await;
    assert_eq!(listed_ids(&listed), vec![open, opens_now, closing]);
    assert_eq!(listed.body["next_cursor"], Value::Null);
    assert_eq!(listed.body["items"][0]["remaining_quantity"], 5);
    for id in [open, opens_now, closing] {
        issued(&app, 2, id).await;
    }
    issue(&app, 2, sold_out)
        .await
        .assert_problem(StatusCode::CONFLICT, "COUPON_SOLD_OUT");
    for id in [not_yet, closed] {
        issue(&app, 2, id)
            .await
            .assert_problem(StatusCode::CONFLICT, "COUPON_NOT_ISSUABLE");
    }

    // A second later the early window opens and the late one has closed.
    app.clock.set("2026-11-24T03:00:01Z".parse().unwrap());
    let listed = app.get("/api/v1/coupons").send().await;
    assert_eq!(listed_ids(&listed), vec![open, not_yet, opens_now]);
}

async fn the_coupon_list_pages_by_id(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(fixed_coupon(&app, 100, 3).await);
    }
    let sold_out = fixed_coupon(&app, 100, 1).await;
    issued(&app, 1, sold_out).await;
    ids.push(fixed_coupon(&app, 100, 3).await);

    let mut seen = Vec::new();
    let mut path = "/api/v1/coupons?limit=2".to_owned();
    loop {
        let page = app.get(&path).send().await;
        let items = listed_ids(&page);
        assert!(items.len() <= 2);
        seen.extend(items);
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/coupons?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    app.get("/api/v1/coupons?limit=0")
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    app.get("/api/v1/coupons?cursor=%%%")
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
}

async fn an_issued_coupon_expires_with_the_clock(backend: Backend) {
    let app = TestApp::new(backend).await;
    let coupon = create_coupon(
        &app,
        json!({"name": "Short", "discount_type": "FIXED", "discount_value": 100, "total_quantity": 10, "valid_days": 1}),
    )
    .await;
    issued(&app, 7, coupon).await;
    let status = |app: &TestApp| {
        let call = app.get("/api/v1/me/coupons").token(&app.token(7));
        async move { call.send().await.body["items"][0]["status"].clone() }
    };
    app.clock.advance(chrono::Duration::hours(23));
    assert_eq!(status(&app).await, "AVAILABLE");
    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(status(&app).await, "EXPIRED");
}

async fn fifty_coupons_for_three_hundred_users(backend: Backend) {
    let app = TestApp::new(backend).await;
    let coupon = fixed_coupon(&app, 1000, 50).await;
    let calls = (1..=300).map(|user| {
        app.post(&format!("/api/v1/coupons/{coupon}/issue"))
            .token(&app.token(user))
    });
    let responses = concurrently(calls).await;
    let created = count_status(&responses, StatusCode::CREATED);
    let sold_out = count_code(&responses, "COUPON_SOLD_OUT");
    assert_eq!((created, sold_out), (50, 250));
    assert_eq!(app.scalar("SELECT issued_quantity FROM coupons").await, 50);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM user_coupons").await, 50);
    assert_eq!(
        app.scalar("SELECT COUNT(DISTINCT user_id) FROM user_coupons")
            .await,
        50
    );
    // Every success corresponds to exactly one stored user coupon.
    for response in responses.iter().filter(|r| r.status == StatusCode::CREATED) {
        let id = response.body["id"].as_i64().unwrap();
        assert_eq!(
            app.scalar(&format!(
                "SELECT COUNT(*) FROM user_coupons WHERE id = {id}"
            ))
            .await,
            1
        );
    }
}

async fn one_user_firing_thirty_issues_gets_one(backend: Backend) {
    let app = TestApp::new(backend).await;
    let coupon = fixed_coupon(&app, 1000, 50).await;
    let token = app.token(7);
    let calls = (0..30).map(|_| {
        app.post(&format!("/api/v1/coupons/{coupon}/issue"))
            .token(&token)
    });
    let responses = concurrently(calls).await;
    let created = count_status(&responses, StatusCode::CREATED);
    let already = count_code(&responses, "COUPON_ALREADY_ISSUED");
    assert_eq!((created, already), (1, 29));
    assert_eq!(app.scalar("SELECT issued_quantity FROM coupons").await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM user_coupons").await, 1);
}

on_both_backends!(
    an_admin_creates_a_coupon_and_anyone_reads_it,
    coupon_fields_are_validated,
    a_missing_coupon_is_coupon_not_found,
    issuing_gives_the_user_an_available_coupon,
    a_coupon_is_issued_once_per_user,
    a_sold_out_coupon_is_refused,
    coupons_issue_only_inside_their_window,
    the_coupon_list_holds_exactly_the_issuable_ones,
    the_coupon_list_pages_by_id,
    an_issued_coupon_expires_with_the_clock,
    fifty_coupons_for_three_hundred_users,
    one_user_firing_thirty_issues_gets_one,
);
