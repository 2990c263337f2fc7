//! Scenarios: their data (created through the admin API), their requests, and the invariants
//! checked through the API once they have run.

use anyhow::Context;
use futures::future::try_join_all;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::api::{Api, Reply};
use crate::cli::{LoadArgs, RunArgs, ScenarioName};
use crate::stats::{Recorder, Summary};

/// Users of different runs against one database must not meet.
fn user_base() -> i64 {
    1_000_000 + rand::rng().random_range(0..1_000_000) * 1_000
}

/// The data a scenario runs on.
pub struct Fixture {
    pub products: Vec<i64>,
    pub coupon: Option<(i64, i64)>,
    pub users: Vec<(i64, String)>,
}

/// What the successful responses did, to compare with the server's state afterwards.
#[derive(Default)]
pub struct Ledger {
    sold: HashMap<i64, i64>,
    charged: HashMap<i64, i64>,
    paid: HashMap<i64, i64>,
    issued: i64,
}

enum Op {
    Get(String),
    Charge(usize),
    Issue(usize),
    Order(usize, Vec<(i64, i64)>),
}

/// Whether the scenario runs for a duration or sends one request per user.
fn one_per_user(name: ScenarioName) -> bool {
    matches!(name, ScenarioName::CouponRush | ScenarioName::OrderHot)
}

pub async fn prepare(
    api: &Api,
    name: ScenarioName,
    load: &LoadArgs,
) -> anyhow::Result<(Fixture, Ledger)> {
    use ScenarioName::*;
    let mut ledger = Ledger::default();
    let (product_count, stock, users, funds) = match name {
        Health => (0, 0, 0, 0),
        Detail | Popular | Browse => (50, 1_000_000, 20, 100_000),
        Charge => (0, 0, 1_000, 0),
        CouponRush => (0, 0, load.users, 0),
        OrderHot => (1, load.limited, load.users, 10_000),
        OrderSpread => (100, 1_000_000_000, 500, 1_000_000),
        Mixed => (50, 1_000_000_000, 500, 1_000_000),
    };
    let mut products = Vec::with_capacity(product_count);
    for n in 0..product_count {
        products.push(
            api.create_product(&format!("{name:?} product {n}"), 100, stock)
                .await?,
        );
    }
    let coupon = match name {
        CouponRush => Some((api.create_coupon(load.limited).await?, load.limited)),
        Mixed => Some((api.create_coupon(1_000_000).await?, 1_000_000)),
        _ => None,
    };
    let base = user_base();
    let users: Vec<(i64, String)> = (1..=users as i64)
        .map(|n| (base + n, api.token(base + n)))
        .collect();
    if funds > 0 {
        for chunk in users.chunks(64) {
            try_join_all(chunk.iter().map(|(_, token)| api.charge(token, funds))).await?;
        }
        for (user, _) in &users {
            ledger.charged.insert(*user, funds);
        }
    }
    if matches!(name, Detail | Popular | Browse) {
        // Some sales, so that popular products has five to show.
        for (i, (user, token)) in users.iter().enumerate() {
            let product = products[i % 7];
            let body = json!({"items": [{"product_id": product, "quantity": 1 + i % 3}]});
            let reply = api.post("/api/v1/orders", token, &body).await?;
            account(
                &mut ledger,
                &Op::Order(i, vec![(product, 1 + i as i64 % 3)]),
                *user,
                &reply,
            );
        }
    }
    Ok((
        Fixture {
            products,
            coupon,
            users,
        },
        ledger,
    ))
}

fn choose(name: ScenarioName, fixture: &Fixture, rng: &mut SmallRng, turn: usize) -> Op {
    use ScenarioName::*;
    let product =
        |rng: &mut SmallRng| fixture.products[rng.random_range(0..fixture.products.len())];
    let user = |rng: &mut SmallRng| rng.random_range(0..fixture.users.len());
    match name {
        Health => Op::Get("/health/live".into()),
        Detail => Op::Get(format!("/api/v1/products/{}", product(rng))),
        Popular => Op::Get("/api/v1/products/popular".into()),
        Browse => match rng.random_range(0..10) {
            0..=6 => Op::Get(format!("/api/v1/products/{}", product(rng))),
            7 => Op::Get("/api/v1/products?limit=20".into()),
            _ => Op::Get("/api/v1/products/popular".into()),
        },
        Charge => Op::Charge(user(rng)),
        CouponRush => Op::Issue(turn),
        OrderHot => Op::Order(turn, vec![(fixture.products[0], 1)]),
        OrderSpread => Op::Order(user(rng), vec![(product(rng), 1)]),
        Mixed => match rng.random_range(0..20) {
            0..=10 => Op::Get(format!("/api/v1/products/{}", product(rng))),
            11 => Op::Get("/api/v1/products?limit=20".into()),
            12..=13 => Op::Get("/api/v1/products/popular".into()),
            14..=16 => {
                let lines = (0..rng.random_range(1..=2))
                    .map(|_| (product(rng), rng.random_range(1..=3)))
                    .collect();
                Op::Order(user(rng), lines)
            }
            17 => Op::Charge(user(rng)),
            _ => Op::Issue(user(rng)),
        },
    }
}

async fn execute(api: &Api, fixture: &Fixture, op: &Op) -> anyhow::Result<Reply> {
    match op {
        Op::Get(path) => api.get(path, None).await,
        Op::Charge(u) => {
            api.post(
                "/api/v1/me/balance/charges",
                &fixture.users[*u].1,
                &json!({"amount": 1000}),
            )
            .await
        }
        Op::Issue(u) => {
            let coupon = fixture.coupon.context("a coupon scenario")?.0;
            api.post(
                &format!("/api/v1/coupons/{coupon}/issue"),
                &fixture.users[*u].1,
                &json!({}),
            )
            .await
        }
        Op::Order(u, lines) => {
            let items: Vec<_> = lines
                .iter()
                .map(|(p, q)| json!({"product_id": p, "quantity": q}))
                .collect();
            api.post(
                "/api/v1/orders",
                &fixture.users[*u].1,
                &json!({"items": items}),
            )
            .await
        }
    }
}

fn account(ledger: &mut Ledger, op: &Op, user: i64, reply: &Reply) {
    match (op, reply.status) {
        (Op::Charge(_), 200) => *ledger.charged.entry(user).or_default() += 1000,
        (Op::Issue(_), 201) => ledger.issued += 1,
        (Op::Order(_, lines), 201) => {
            for (product, quantity) in lines {
                *ledger.sold.entry(*product).or_default() += quantity;
            }
            *ledger.paid.entry(user).or_default() +=
                reply.body["paid_amount"].as_i64().unwrap_or(0);
        }
        _ => {}
    }
}

/// Runs the scenario's requests from `concurrency` closed-loop workers.
pub async fn drive(
    api: &Api,
    name: ScenarioName,
    fixture: Arc<Fixture>,
    ledger: Ledger,
    load: &LoadArgs,
) -> (Summary, Ledger) {
    let ledger = Arc::new(Mutex::new(ledger));
    let turns = Arc::new(AtomicUsize::new(0));
    let count_bound = one_per_user(name);
    let progress = progress_bar(name, count_bound, fixture.users.len(), load.duration);
    let started = Instant::now();
    let deadline = started + load.duration;
    let workers: Vec<_> = (0..load.concurrency)
        .map(|worker| {
            let (api, fixture, ledger, turns, progress) = (
                api.clone(),
                fixture.clone(),
                ledger.clone(),
                turns.clone(),
                progress.clone(),
            );
            tokio::spawn(async move {
                let mut recorder = Recorder::default();
                let mut rng = SmallRng::seed_from_u64(worker as u64);
                loop {
                    let turn = turns.fetch_add(1, Ordering::Relaxed);
                    if (count_bound && turn >= fixture.users.len())
                        || (!count_bound && Instant::now() >= deadline)
                    {
                        return recorder;
                    }
                    let op = choose(name, &fixture, &mut rng, turn);
                    let sent = Instant::now();
                    match execute(&api, &fixture, &op).await {
                        Ok(reply) => {
                            recorder.record(sent.elapsed(), reply.status, reply.code.as_deref());
                            let user = match &op {
                                Op::Charge(u) | Op::Issue(u) | Op::Order(u, _) => {
                                    fixture.users[*u].0
                                }
                                Op::Get(_) => 0,
                            };
                            account(&mut ledger.lock().expect("ledger"), &op, user, &reply);
                        }
                        Err(_) => recorder.failed(),
                    }
                    if count_bound {
                        progress.inc(1);
                    } else {
                        progress.set_position(started.elapsed().as_millis() as u64);
                    }
                }
            })
        })
        .collect();
    let mut total = Recorder::default();
    for worker in workers {
        total.merge(&worker.await.expect("worker"));
    }
    progress.finish_and_clear();
    let summary = total.summary(started.elapsed());
    let ledger = Arc::try_unwrap(ledger)
        .ok()
        .expect("workers are done")
        .into_inner()
        .expect("ledger");
    (summary, ledger)
}

fn progress_bar(
    name: ScenarioName,
    count_bound: bool,
    users: usize,
    duration: Duration,
) -> ProgressBar {
    let (length, unit) = if count_bound {
        (users as u64, "requests")
    } else {
        (duration.as_millis() as u64, "ms")
    };
    let bar = ProgressBar::new(length);
    let template = format!("{{msg:>14}} [{{bar:40}}] {{pos}}/{{len}} {unit}");
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
    bar.set_message(format!("{name:?}"));
    bar
}

/// Compares the server's state with what the responses said happened. Each line is one check.
pub async fn verify(
    api: &Api,
    fixture: &Fixture,
    ledger: &Ledger,
    initial_stock: &HashMap<i64, i64>,
) -> anyhow::Result<Vec<(bool, String)>> {
    let mut checks = Vec::new();
    for product in &fixture.products {
        let stock = api
            .read(&format!("/api/v1/products/{product}"), None)
            .await?["stock"]
            .as_i64()
            .unwrap_or(-1);
        let sold = ledger.sold.get(product).copied().unwrap_or(0);
        let before = initial_stock[product];
        if before - stock != sold || stock < 0 {
            checks.push((
                false,
                format!("product {product}: stock {before} -> {stock}, but {sold} were sold"),
            ));
        }
    }
    checks.push((
        checks.is_empty(),
        format!(
            "{} products: stock before - stock after = units sold, none oversold",
            fixture.products.len()
        ),
    ));
    if let Some((coupon, total)) = fixture.coupon {
        let issued = api.read(&format!("/api/v1/coupons/{coupon}"), None).await?["issued_quantity"]
            .as_i64()
            .unwrap_or(-1);
        checks.push((
            issued == ledger.issued && issued <= total,
            format!(
                "coupon {coupon}: issued {issued} of {total}, {} successful issue responses",
                ledger.issued
            ),
        ));
    }
    let sample: Vec<&(i64, String)> = fixture
        .users
        .iter()
        .filter(|(u, _)| ledger.charged.contains_key(u))
        .take(500)
        .collect();
    let mut wrong = 0;
    for (user, token) in &sample {
        let balance = api.read("/api/v1/me/balance", Some(token)).await?["balance"]
            .as_i64()
            .unwrap_or(-1);
        let expected = ledger.charged.get(user).copied().unwrap_or(0)
            - ledger.paid.get(user).copied().unwrap_or(0);
        if balance != expected {
            wrong += 1;
            checks.push((
                false,
                format!("user {user}: balance {balance}, charges - payments = {expected}"),
            ));
        }
    }
    if !sample.is_empty() {
        checks.push((
            wrong == 0,
            format!("{} users: balance = charges - payments", sample.len()),
        ));
    }
    Ok(checks)
}

pub async fn stock_of(api: &Api, products: &[i64]) -> anyhow::Result<HashMap<i64, i64>> {
    let mut stock = HashMap::new();
    for product in products {
        stock.insert(
            *product,
            api.read(&format!("/api/v1/products/{product}"), None)
                .await?["stock"]
                .as_i64()
                .unwrap_or(0),
        );
    }
    Ok(stock)
}

/// A scenario from set-up to verdict; the outcome's bool says whether every invariant held.
pub async fn run(
    api: &Api,
    name: ScenarioName,
    load: &LoadArgs,
) -> anyhow::Result<(Summary, Vec<(bool, String)>, Arc<Fixture>)> {
    let (fixture, ledger) = prepare(api, name, load).await?;
    let initial_stock = stock_of(api, &fixture.products).await?;
    let fixture = Arc::new(fixture);
    let (summary, ledger) =
        drive(api, name, fixture.clone(), ledger_after_setup(ledger), load).await;
    let checks = verify(api, &fixture, &ledger, &initial_stock).await?;
    Ok((summary, checks, fixture))
}

/// Set-up sales are already in the initial stock; charges stay, as balances include them.
fn ledger_after_setup(mut ledger: Ledger) -> Ledger {
    ledger.sold.clear();
    ledger
}

/// `loadgen run`: one scenario against a running server.
pub async fn run_against(args: RunArgs) -> anyhow::Result<bool> {
    let api = Api::new(&args.base_url, &args.jwt_secret, args.load.concurrency)?;
    let (summary, checks, _) = run(&api, args.scenario, &args.load).await?;
    println!("{}", summary.line(&format!("{:?}", args.scenario)));
    Ok(print_checks(&checks))
}

pub fn print_checks(checks: &[(bool, String)]) -> bool {
    for (ok, check) in checks {
        println!("  {} {check}", if *ok { "ok    " } else { "BROKEN" });
    }
    checks.iter().all(|(ok, _)| *ok)
}
