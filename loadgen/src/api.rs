//! The HTTP API as the load generator uses it: requests, tokens, and the admin set-up calls.

use anyhow::bail;
use commerce_test_support::{fixtures, token};
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
        let admin = token::admin(secret);
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
            token: token::user(&self.secret, id),
        }
    }

    /// The servers in turn.
    fn next_base(&self) -> &str {
        &self.bases[self.turn.fetch_add(1, Ordering::Relaxed) % self.bases.len()]
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let base = self.next_base();
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

    /// A product for the scenario with its flash-sale `controls` (an object, maybe empty),
    /// through the kit's fixture.
    pub async fn create_product(
        &self,
        name: &str,
        price: i64,
        stock: i64,
        controls: Value,
    ) -> anyhow::Result<i64> {
        fixtures::create_product_with(
            &self.http,
            self.next_base(),
            &self.admin,
            name,
            price,
            stock,
            controls,
        )
        .await
    }

    /// A rush campaign for the scenario, through the kit's fixture.
    pub async fn create_coupon(&self, total_quantity: i64) -> anyhow::Result<i64> {
        let (name, discount) = ("loadgen rush", 1000);
        fixtures::create_coupon(
            &self.http,
            self.next_base(),
            &self.admin,
            name,
            discount,
            total_quantity,
        )
        .await
    }

    /// Funds a user before the clock starts, through the kit's fixture.
    pub async fn fund(&self, user: &User, amount: i64) -> anyhow::Result<()> {
        fixtures::charge(&self.http, self.next_base(), &user.token, amount).await?;
        Ok(())
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
