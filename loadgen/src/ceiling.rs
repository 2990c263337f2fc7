//! The database ceilings, measured without HTTP against the same database, at the same
//! concurrency and with the same pool size as the server, one write per transaction:
//! - the order service called directly on the data of the order-rush-spread scenario, each
//!   order committed alone: what group commit gains over it is what batching is worth;
//! - one hot row updated once per transaction: what a rush for one product can reach while every
//!   win costs a row lock held until its own durable commit.

use anyhow::Context;
use commerce::app::AppState;
use commerce::clock::SystemClock;
use commerce::config::Settings;
use commerce::http::Problem;
use commerce::idempotency::Outcome;
use commerce::ids::{ProductId, UserId};
use commerce::order::{self, OrderRequest};
use commerce::store::{Batching, Db};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

use crate::driver::{drive, Answer, Load, Worker};
use crate::scenario::Fixture;
use crate::stats::Summary;

/// Orders of one unit of a random product by a random user, as order-rush-spread sends them.
pub async fn database(
    url: &str,
    connections: u32,
    fixture: &Fixture,
    load: Load,
) -> anyhow::Result<Summary> {
    let db = commerce::store::connect_batched(url, None, connections, one_per_commit(connections))
        .await?;
    // Tokens are never checked here: the secret only has to be non-empty.
    let state = AppState::new(
        db.clone(),
        Settings::default(),
        "unused",
        Arc::new(SystemClock),
    );
    let users: Arc<[i64]> = fixture.users.iter().map(|u| u.id).collect();
    let products: Arc<[i64]> = fixture.products.clone().into();
    let workers = (0..load.concurrency)
        .map(|n| OrderWorker {
            state: state.clone(),
            users: users.clone(),
            products: products.clone(),
            rng: SmallRng::seed_from_u64(n as u64),
        })
        .collect();
    let (summary, _) = drive("DB ceiling", load, workers).await;
    db.close().await;
    Ok(summary)
}

/// The hot product's row, updated (stock + 0) in one write transaction after another.
pub async fn hot_row(
    url: &str,
    connections: u32,
    product: i64,
    load: Load,
) -> anyhow::Result<Summary> {
    let db = commerce::store::connect_batched(url, None, connections, one_per_commit(connections))
        .await?;
    let product = ProductId::new(product).context("product ids are positive")?;
    let workers = (0..load.concurrency)
        .map(|_| HotRowWorker {
            db: db.clone(),
            product,
        })
        .collect();
    let (summary, _) = drive("hot-row ceiling", load, workers).await;
    db.close().await;
    Ok(summary)
}

/// One write per transaction, as many transactions at once as connections (SQLite: one writer).
fn one_per_commit(connections: u32) -> Batching {
    Batching {
        max_batch: 1,
        committers: connections as usize,
        ..Batching::default()
    }
}

struct HotRowWorker {
    db: Db,
    product: ProductId,
}

impl Worker for HotRowWorker {
    async fn step(&mut self, _turn: u64) -> Option<Answer> {
        let product = self.product;
        let written = self
            .db
            .write(move |conn| Box::pin(async move { conn.restock(product, 0).await }))
            .await;
        Some(match written {
            Ok(()) => Answer {
                status: 200,
                code: None,
            },
            Err(error) => refused(Problem::from(error)),
        })
    }
}

struct OrderWorker {
    state: Arc<AppState>,
    users: Arc<[i64]>,
    products: Arc<[i64]>,
    rng: SmallRng,
}

impl Worker for OrderWorker {
    async fn step(&mut self, _turn: u64) -> Option<Answer> {
        let user = self.users[self.rng.random_range(0..self.users.len())];
        let product = self.products[self.rng.random_range(0..self.products.len())];
        let user = UserId::new(user).expect("loadgen user ids are positive");
        let request = OrderRequest::parse(vec![(product, 1)], None).expect("a valid order");
        Some(
            match order::place(&self.state.order(), user, request, None).await {
                Outcome::Fresh(Ok(_)) | Outcome::Replayed(_) => Answer {
                    status: 201,
                    code: None,
                },
                Outcome::Fresh(Err(error)) => refused(Problem::from(error)),
            },
        )
    }
}

/// A failure counted with the HTTP layer's own mapping, so the ceilings and the HTTP runs count
/// alike.
fn refused(problem: Problem) -> Answer {
    Answer {
        status: problem.status.as_u16(),
        code: Some(problem.code.as_str().to_owned()),
    }
}
