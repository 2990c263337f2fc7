use crate::harness::{Backend, TestApp, SECRET};
use crate::on_both_backends;
use axum::http::StatusCode;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

fn sign(claims: serde_json::Value, secret: &str) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn in_an_hour() -> u64 {
    jsonwebtoken::get_current_timestamp() + 3600
}

async fn requests_without_a_valid_token_are_unauthorized(backend: Backend) {
    let app = TestApp::new(backend).await;
    let expired = sign(
        json!({"sub": "7", "exp": jsonwebtoken::get_current_timestamp() - 10}),
        SECRET,
    );
    let wrong_secret = sign(json!({"sub": "7", "exp": in_an_hour()}), "another-secret");
    let no_exp = sign(json!({"sub": "7"}), SECRET);
    let bad_sub = sign(json!({"sub": "seven", "exp": in_an_hour()}), SECRET);
    let zero_sub = sign(json!({"sub": "0", "exp": in_an_hour()}), SECRET);
    let none_alg = "eyJhbGciOiJub25lIn0.eyJzdWIiOiI3IiwiZXhwIjo5OTk5OTk5OTk5fQ.";
    for header in [
        None,
        Some("Bearer".to_owned()),
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some("Bearer not.a.jwt".to_owned()),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {wrong_secret}")),
        Some(format!("Bearer {no_exp}")),
        Some(format!("Bearer {bad_sub}")),
        Some(format!("Bearer {zero_sub}")),
        Some(format!("Bearer {none_alg}")),
    ] {
        let mut call = app.get("/api/v1/me/balance");
        if let Some(header) = &header {
            call = call.header("authorization", header);
        }
        call.send()
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
}

async fn a_hand_signed_token_with_the_secret_works(backend: Backend) {
    let app = TestApp::new(backend).await;
    let token = sign(json!({"sub": "42", "exp": in_an_hour()}), SECRET);
    let response = app.get("/api/v1/me/balance").token(&token).send().await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["user_id"], 42);
    let admin = sign(
        json!({"sub": "1", "exp": in_an_hour(), "role": "admin"}),
        SECRET,
    );
    let created = app
        .post("/api/v1/admin/products")
        .token(&admin)
        .json(json!({"name": "x", "price": 1, "stock": 0}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let not_admin = sign(
        json!({"sub": "1", "exp": in_an_hour(), "role": "staff"}),
        SECRET,
    );
    app.post("/api/v1/admin/products")
        .token(&not_admin)
        .json(json!({"name": "x", "price": 1, "stock": 0}))
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
}

on_both_backends!(
    requests_without_a_valid_token_are_unauthorized,
    a_hand_signed_token_with_the_secret_works
);
