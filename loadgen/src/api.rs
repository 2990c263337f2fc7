//! The HTTP API as the load generator uses it: requests, tokens, and the admin set-up calls.

use anyhow::{bail, Context};
use commerce::ids::UserId;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::driver::Answer;

/// One response, reduced to what the statistics and the ledger need.
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn answer(&self) -> Answer {
        Answer {
            status: self.status,
            code: (self.status >= 400)
                .then(|| self.body["code"].as_str().map(str::to_owned))
                .flatten(),
        }
    }
}

/// A user of the run: an id only the run uses, and a token for it.
pub struct User {
    pub id: i64,
    pub token: String,
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    /// The servers, taken in turn request by request, as a round-robin load balancer would.
    bases: Arc<[Box<str>]>,
    turn: Arc<AtomicUsize>,
    secret: Arc<str>,
    admin: Arc<str>,
}

/// Tokens outlive any run; the server checks `exp`, so it must be in the future.
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);

impl Api {
    pub fn new(base: &str, secret: &str, connections: usize) -> anyhow::Result<Api> {
        Api::spread(&[base], secret, connections)
    }

    /// An API served by several instances.
    pub fn spread(bases: &[&str], secret: &str, connections: usize) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()?;
        // The admin is a user id no run hands out (runs use ids from 10,000,000 up).
        let admin = mint(secret, 1, true);
        Ok(Api {
            http,
            bases: bases
                .iter()
                .map(|b| b.trim_end_matches('/').into())
                .collect(),
            turn: Arc::default(),
            secret: secret.into(),
            admin: admin.into(),
        })
    }

    pub fn user(&self, id: i64) -> User {
        User {
            id,
            token: mint(&self.secret, id, false),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let base = &self.bases[self.turn.fetch_add(1, Ordering::Relaxed) % self.bases.len()];
        let mut request = self.http.request(method, format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        // Bodies that are not JSON (there should be none) still count by status.
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, Some(token), body).await
    }

    /// A GET that must succeed, for set-up and verification.
    pub async fn read(&self, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
        let reply = self.get(path, token).await?;
        if reply.status != 200 {
            bail!("GET {path} answered {}: {}", reply.status, reply.body);
        }
        Ok(reply.body)
    }

    async fn create(&self, path: &str, body: Value) -> anyhow::Result<i64> {
        let reply = self.post(path, &self.admin, Some(&body)).await?;
        if reply.status != 201 {
            bail!("POST {path} answered {}: {}", reply.status, reply.body);
        }
        reply.body["id"].as_i64().context("an id in the answer")
    }

    pub async fn create_product(&self, name: &str, price: i64, stock: i64) -> anyhow::Result<i64> {
        self.create(
            "/api/v1/admin/products",
            json!({"name": name, "price": price, "stock": stock}),
        )
        .await
    }

    /// A campaign of `total_quantity` coupons of 1,000 won off, open now.
    pub async fn create_coupon(&self, total_quantity: i64) -> anyhow::Result<i64> {
        self.create(
            "/api/v1/admin/coupons",
            json!({"name": "loadgen rush", "discount_type": "FIXED", "discount_value": 1000,
                   "total_quantity": total_quantity, "valid_days": 7}),
        )
        .await
    }

    pub async fn charge(&self, user: &User, amount: i64) -> anyhow::Result<Reply> {
        self.post(
            "/api/v1/me/balance/charges",
            &user.token,
            Some(&json!({"amount": amount})),
        )
        .await
    }
}

fn mint(secret: &str, user: i64, admin: bool) -> String {
    let user = UserId::new(user).expect("loadgen user ids are positive");
    commerce::app::token(secret, user, admin, TOKEN_TTL)
}
