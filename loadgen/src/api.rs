//! The HTTP API as the load generator uses it: requests, tokens, and the admin set-up calls.

use anyhow::{bail, Context};
use commerce::ids::UserId;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// One response, reduced to what the statistics and the ledger need.
pub struct Reply {
    pub status: u16,
    /// The problem `code` of an error response.
    pub code: Option<String>,
    pub body: Value,
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Arc<str>,
    secret: Arc<str>,
    admin: Arc<str>,
}

impl Api {
    pub fn new(base: &str, secret: &str, connections: usize) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()?;
        let admin = mint(secret, 999_999_999, true);
        Ok(Api {
            http,
            base: base.trim_end_matches('/').into(),
            secret: secret.into(),
            admin: admin.into(),
        })
    }

    pub fn token(&self, user: i64) -> String {
        mint(&self.secret, user, false)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = (status >= 400)
            .then(|| body["code"].as_str().map(str::to_owned))
            .flatten();
        Ok(Reply { status, code, body })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    async fn created(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let reply = self
            .send(Method::POST, path, Some(&self.admin), Some(&body))
            .await?;
        if reply.status != 201 {
            bail!("POST {path} answered {}: {}", reply.status, reply.body);
        }
        Ok(reply.body)
    }

    pub async fn create_product(&self, name: &str, price: i64, stock: i64) -> anyhow::Result<i64> {
        let body = self
            .created(
                "/api/v1/admin/products",
                json!({"name": name, "price": price, "stock": stock}),
            )
            .await?;
        body["id"].as_i64().context("product id")
    }

    pub async fn create_coupon(&self, total_quantity: i64) -> anyhow::Result<i64> {
        let body = json!({"name": "rush", "discount_type": "FIXED", "discount_value": 1000,
                          "total_quantity": total_quantity, "valid_days": 7});
        self.created("/api/v1/admin/coupons", body).await?["id"]
            .as_i64()
            .context("coupon id")
    }

    pub async fn charge(&self, token: &str, amount: i64) -> anyhow::Result<()> {
        let reply = self
            .post(
                "/api/v1/me/balance/charges",
                token,
                &json!({"amount": amount}),
            )
            .await?;
        if reply.status != 200 {
            bail!("charge answered {}: {}", reply.status, reply.body);
        }
        Ok(())
    }

    pub async fn read(&self, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
        let reply = self.get(path, token).await?;
        if reply.status != 200 {
            bail!("GET {path} answered {}: {}", reply.status, reply.body);
        }
        Ok(reply.body)
    }
}

fn mint(secret: &str, user: i64, admin: bool) -> String {
    let user = UserId::new(user).expect("loadgen user ids are positive");
    commerce::app::token(secret, user, admin, Duration::from_secs(6 * 3600))
}
