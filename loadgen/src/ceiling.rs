//! The database ceiling: the order transaction driven directly through the order service,
//! against the same database at the same concurrency, without HTTP.

use commerce::app::AppState;
use commerce::clock::SystemClock;
use commerce::config::Settings;
use commerce::db::Db;
use commerce::ids::UserId;
use commerce::order::{self, OrderRequest};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::scenario::Fixture;
use crate::stats::{Recorder, Summary};

/// Orders of one unit of a random product by a random user, like the order-spread scenario.
pub async fn database(
    url: &str,
    fixture: &Fixture,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Summary> {
    let db = Db::connect(url, 16).await?;
    let state = AppState::new(
        db.clone(),
        Settings::default(),
        "unused",
        Arc::new(SystemClock),
    );
    let users: Arc<Vec<i64>> = Arc::new(fixture.users.iter().map(|(u, _)| *u).collect());
    let products = Arc::new(fixture.products.clone());
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (state, users, products) = (state.clone(), users.clone(), products.clone());
            tokio::spawn(async move {
                let mut recorder = Recorder::default();
                let mut rng = SmallRng::seed_from_u64(1000 + worker as u64);
                while Instant::now() < deadline {
                    let user =
                        UserId::new(users[rng.random_range(0..users.len())]).expect("positive");
                    let product = products[rng.random_range(0..products.len())];
                    let request =
                        OrderRequest::parse(vec![(product, 1)], None).expect("a valid order");
                    let sent = Instant::now();
                    match order::place(&state, user, request, None).await {
                        Ok(_) => recorder.record(sent.elapsed(), 201, None),
                        Err(error) => recorder.record(sent.elapsed(), 0, Some(error.code())),
                    }
                }
                recorder
            })
        })
        .collect();
    let mut total = Recorder::default();
    for worker in workers {
        total.merge(&worker.await?);
    }
    let summary = total.summary(started.elapsed());
    db.close().await;
    Ok(summary)
}
