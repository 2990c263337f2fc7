use crate::harness::{fresh_database, Backend, TestApp, SECRET};
use crate::on_both_backends;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use std::sync::Arc;
use tower::ServiceExt;

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
    let wrong_secret = sign(
        json!({"sub": "7", "exp": in_an_hour()}),
        "another-secret-that-is-32-bytes!",
    );
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

/// A token with any JOSE header, signed with HS256 (jsonwebtoken's `Header` cannot carry `crit`).
fn sign_with_header(header: serde_json::Value, claims: serde_json::Value, secret: &str) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

const ABSENT: &str = r#"Bearer realm="commerce""#;

fn challenge(error: &str) -> impl Fn(&str) -> bool + '_ {
    move |value: &str| {
        value.starts_with(r#"Bearer realm="commerce", error=""#)
            && value.contains(&format!(r#"error="{error}""#))
            && value.contains("error_description=\"")
    }
}

/// Every 401 carries `WWW-Authenticate: Bearer`, with an RFC 6750 error code unless no bearer
/// credentials were sent at all (§3.1); a 403 says `insufficient_scope`.
async fn every_refusal_carries_a_bearer_challenge(backend: Backend) {
    let app = TestApp::new(backend).await;
    let expired = sign(json!({"sub": "7", "exp": now() - 10}), SECRET);
    // The Authorization headers sent, and the RFC 6750 error code expected (None: none at all).
    let cases: Vec<(Vec<String>, Option<&str>)> = vec![
        (vec![], None),
        (vec!["Basic dXNlcjpwYXNz".into()], None),
        (vec!["Bearer".into()], Some("invalid_request")),
        (vec!["Bearer a b".into()], Some("invalid_request")),
        (vec!["Bearer not.a.jwt".into()], Some("invalid_token")),
        (vec![format!("Bearer {expired}")], Some("invalid_token")),
        (
            vec![
                format!("Bearer {}", app.token(7)),
                format!("Bearer {}", app.token(7)),
            ],
            Some("invalid_request"),
        ),
    ];
    for (headers, error) in cases {
        let mut call = app.get("/api/v1/me/balance");
        for header in &headers {
            call = call.header("authorization", header);
        }
        let response = call.send().await;
        response.assert_problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let value = response.headers["www-authenticate"].to_str().unwrap();
        let expected = match error {
            None => value == ABSENT,
            Some(error) => challenge(error)(value),
        };
        assert!(expected, "{headers:?}: WWW-Authenticate: {value}");
    }
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let lower = app
        .get("/api/v1/me/balance")
        .header("authorization", &format!("bearer {}", app.token(7)))
        .send()
        .await;
    assert_eq!(lower.status, StatusCode::OK);
    let forbidden = app
        .post("/api/v1/admin/products")
        .token(&app.token(7))
        .json(json!({"name": "x", "price": 1, "stock": 0}))
        .send()
        .await;
    forbidden.assert_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    let value = forbidden.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge("insufficient_scope")(value), "{value}");
}

async fn a_token_not_yet_valid_is_refused_beyond_a_small_leeway(backend: Backend) {
    let app = TestApp::new(backend).await;
    let with_nbf = |nbf: u64| sign(json!({"sub": "7", "exp": in_an_hour(), "nbf": nbf}), SECRET);
    let early = app
        .get("/api/v1/me/balance")
        .token(&with_nbf(now() + 600))
        .send()
        .await;
    early.assert_problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert!(challenge("invalid_token")(
        early.headers["www-authenticate"].to_str().unwrap()
    ));
    assert!(early.body["detail"]
        .as_str()
        .unwrap()
        .contains("not valid yet"));
    for nbf in [now() - 60, now(), now() + 5] {
        let response = app
            .get("/api/v1/me/balance")
            .token(&with_nbf(nbf))
            .send()
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "nbf {nbf}: {}",
            response.text
        );
    }
}

async fn sub_must_be_a_canonical_positive_decimal(backend: Backend) {
    let app = TestApp::new(backend).await;
    for sub in [
        json!("+7"),
        json!("07"),
        json!(" 7"),
        json!("7 "),
        json!("-7"),
        json!("7.0"),
        json!("0x7"),
        json!("9223372036854775808"),
        json!(7),
    ] {
        let token = sign(json!({"sub": sub, "exp": in_an_hour()}), SECRET);
        let response = app.get("/api/v1/me/balance").token(&token).send().await;
        response.assert_problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert!(
            challenge("invalid_token")(response.headers["www-authenticate"].to_str().unwrap()),
            "sub {sub}"
        );
    }
    let largest = sign(
        json!({"sub": "9223372036854775807", "exp": in_an_hour()}),
        SECRET,
    );
    let response = app.get("/api/v1/me/balance").token(&largest).send().await;
    assert_eq!(response.body["user_id"], i64::MAX);
}

async fn two_authorization_headers_are_refused_even_when_both_are_valid(backend: Backend) {
    let app = TestApp::new(backend).await;
    let response = app
        .get("/api/v1/me/balance")
        .token(&app.token(7))
        .token(&app.token(8))
        .send()
        .await;
    response.assert_problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert!(response.body["detail"]
        .as_str()
        .unwrap()
        .contains("more than one"));
}

async fn a_critical_header_extension_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let claims = json!({"sub": "7", "exp": in_an_hour()});
    let plain = sign_with_header(
        json!({"alg": "HS256", "typ": "JWT"}),
        claims.clone(),
        SECRET,
    );
    let response = app.get("/api/v1/me/balance").token(&plain).send().await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "the hand-made token is sound"
    );
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("x")] {
        let header = json!({"alg": "HS256", "typ": "JWT", "crit": crit, "exp": 1});
        let token = sign_with_header(header, claims.clone(), SECRET);
        let response = app.get("/api/v1/me/balance").token(&token).send().await;
        response.assert_problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert!(challenge("invalid_token")(
            response.headers["www-authenticate"].to_str().unwrap()
        ));
    }
}

/// During a key rotation the previous secret still verifies; it never signs.
async fn the_previous_secret_verifies_during_a_rotation(backend: Backend) {
    const PREVIOUS: &str = "the-previous-secret-of-32-bytes!!";
    let db = fresh_database(backend).await;
    let pool = commerce::store::connect(&db.url, 4).await.unwrap();
    pool.migrate().await.unwrap();
    let mut state = commerce::app::AppState::new(
        pool,
        crate::harness::settings(),
        SECRET,
        Arc::new(commerce::clock::SystemClock),
    );
    Arc::get_mut(&mut state)
        .unwrap()
        .jwt
        .accept_previous(PREVIOUS);
    let router = state.router();
    let status = |token: String| {
        let router = router.clone();
        async move {
            let request = Request::get("/api/v1/me/balance")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            router.oneshot(request).await.unwrap().status()
        }
    };
    let claims = json!({"sub": "7", "exp": in_an_hour()});
    assert_eq!(status(sign(claims.clone(), SECRET)).await, StatusCode::OK);
    assert_eq!(status(sign(claims.clone(), PREVIOUS)).await, StatusCode::OK);
    assert_eq!(
        status(sign(claims.clone(), "a-third-secret-nobody-configured")).await,
        StatusCode::UNAUTHORIZED
    );
    // An expired token stays expired whichever key signed it.
    let expired = json!({"sub": "7", "exp": now() - 10});
    assert_eq!(
        status(sign(expired, PREVIOUS)).await,
        StatusCode::UNAUTHORIZED
    );
    // Minted tokens use the current secret only.
    let minted = state.jwt.mint(
        commerce::ids::UserId::new(7).unwrap(),
        false,
        std::time::Duration::from_secs(60),
    );
    assert_eq!(status(minted.clone()).await, StatusCode::OK);
    let signature = minted.rsplit('.').next().unwrap();
    let unsigned = minted.rsplit_once('.').unwrap().0;
    let expected = jsonwebtoken::crypto::sign(
        unsigned.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    assert_eq!(signature, expected);
}

on_both_backends!(
    requests_without_a_valid_token_are_unauthorized,
    a_hand_signed_token_with_the_secret_works,
    every_refusal_carries_a_bearer_challenge,
    a_token_not_yet_valid_is_refused_beyond_a_small_leeway,
    sub_must_be_a_canonical_positive_decimal,
    two_authorization_headers_are_refused_even_when_both_are_valid,
    a_critical_header_extension_is_refused,
    the_previous_secret_verifies_during_a_rotation,
);
