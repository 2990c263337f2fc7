//! Charges decided together (`balance::charging`): a rush of concurrent charges, several to each
//! user, some past the maximum balance, some retried with their Idempotency-Key or with a key
//! reused for another amount, leaves every balance equal to its history and within the maximum,
//! and answers every charge as one charge made alone would have been answered.

use axum::http::StatusCode;
use serde_json::json;
use std::collections::{HashMap, HashSet};

use crate::harness::{concurrently, settings, Backend, TestApp};
use crate::invariants::assert_balances_match_history;
use crate::on_both_backends;
use commerce::config::Settings;
use commerce::money::Won;

const USERS: i64 = 12;
const AMOUNT: i64 = 10_000;
/// Ten charges of [`AMOUNT`] fill a balance: a user's later charges are refused.
const MAX_BALANCE: i64 = 10 * AMOUNT;
const CHARGES: i64 = 300;

/// Charge `n`: to user `n % USERS`; every fifth carries a key of its own and is sent twice
/// (its retry may land in its batch or a later one).
fn charge(n: i64) -> (i64, Option<String>) {
    (n % USERS + 1, (n % 5 == 3).then(|| format!("key-{n}")))
}

async fn a_rush_of_charges_leaves_balances_equal_to_their_history(backend: Backend) {
    let limits = Settings {
        max_balance: Won(MAX_BALANCE),
        ..settings()
    };
    let app = TestApp::with_settings(backend, limits).await;
    let mut sent = Vec::new();
    for n in 0..CHARGES {
        let (user, key) = charge(n);
        if key.is_some() {
            sent.push((user, key.clone()));
        }
        sent.push((user, key));
    }
    let post = |user: i64, key: Option<&str>, amount: i64| {
        let call = app
            .post("/api/v1/me/balance/charges")
            .token(&app.token(user))
            .json(json!({"amount": amount}));
        match key {
            Some(key) => call.header("idempotency-key", key),
            None => call,
        }
    };
    let calls = sent
        .iter()
        .map(|(user, key)| post(*user, key.as_deref(), AMOUNT));
    let responses = concurrently(calls).await;

    let mut charged: HashMap<i64, HashSet<i64>> = HashMap::new();
    let mut by_key: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut refused = 0;
    for ((user, key), response) in sent.iter().zip(&responses) {
        if response.status == StatusCode::OK {
            assert_eq!(response.body["user_id"], *user);
            assert_eq!(response.body["charged"], AMOUNT);
            let balance = response.body["balance"].as_i64().unwrap();
            assert!(balance <= MAX_BALANCE, "{}", response.text);
            let id = response.body["history_id"].as_i64().unwrap();
            charged.entry(*user).or_default().insert(id);
        } else {
            response.assert_problem(StatusCode::CONFLICT, "BALANCE_LIMIT_EXCEEDED");
            refused += 1;
        }
        if let Some(key) = key {
            by_key.entry(key).or_default().push(&response.text);
        }
    }
    // A retry answers exactly what its first attempt answered.
    for (key, answers) in &by_key {
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0], answers[1], "{key}");
    }
    // A key used again for another amount is refused, in a batch of its own or with others.
    let reused = concurrently(
        by_key
            .keys()
            .take(8)
            .map(|key| post(key[4..].parse::<i64>().unwrap() % USERS + 1, Some(*key), 1)),
    )
    .await;
    for response in &reused {
        response.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED");
    }
    // Each user gets as many distinct charges as fit under the maximum, the rest are refused.
    for user in 1..=USERS {
        let ids = charged.get(&user).map_or(0, HashSet::len) as i64;
        assert_eq!(ids, MAX_BALANCE / AMOUNT, "user {user}");
        assert_eq!(app.balance(user).await, MAX_BALANCE, "user {user}");
        let rows = app
            .scalar(&format!(
                "SELECT COUNT(*) FROM balance_history WHERE user_id = {user} AND kind = 'CHARGE'"
            ))
            .await;
        assert_eq!(rows, ids, "user {user}: one history row per charge");
    }
    assert!(refused > 0);
    assert_balances_match_history(app.raw()).await;
}

on_both_backends!(a_rush_of_charges_leaves_balances_equal_to_their_history);
