//! Which request a scenario sends next, sending it, and booking what a success did.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::Arc;

use super::fixture::Fixture;
use super::kind::Scenario;
use crate::api::{Api, Reply};
use crate::driver::{Answer, Worker};
use crate::ledger::Ledger;

/// Charged per charge request; small, so no run reaches the maximum balance.
const CHARGE: i64 = 1_000;

/// A request; users are indexes into the fixture's users.
#[derive(Debug, PartialEq)]
enum Op {
    Get(String),
    Balance(usize),
    Charge(usize),
    Issue(usize),
    Order(usize, Vec<(i64, i64)>),
    Cancel(Placed),
}

/// An order this worker placed and may cancel.
#[derive(Debug, PartialEq)]
struct Placed {
    user: usize,
    id: i64,
    lines: Vec<(i64, i64)>,
}

/// The next request; a cancellation takes one of the worker's `placed` orders.
fn choose(
    scenario: Scenario,
    fixture: &Fixture,
    rng: &mut SmallRng,
    turn: u64,
    placed: &mut Vec<Placed>,
) -> Op {
    let product =
        |rng: &mut SmallRng| fixture.products[rng.random_range(0..fixture.products.len())];
    let detail = |rng: &mut SmallRng| Op::Get(format!("/api/v1/products/{}", product(rng)));
    let list = || Op::Get("/api/v1/products?limit=20".into());
    let popular = || Op::Get("/api/v1/products/popular".into());
    let user = |rng: &mut SmallRng| rng.random_range(0..fixture.users.len());
    // A rush is one request per user: turn n is user n's.
    let rusher = turn as usize;
    match scenario {
        Scenario::Health => Op::Get("/health/live".into()),
        Scenario::Detail => detail(rng),
        Scenario::Popular => popular(),
        Scenario::Browse => match rng.random_range(0..10) {
            0..=6 => detail(rng),
            7 => list(),
            _ => popular(),
        },
        Scenario::Charge => Op::Charge(user(rng)),
        Scenario::CouponRush => Op::Issue(rusher),
        Scenario::OrderRushHot => Op::Order(rusher, vec![(fixture.products[0], 1)]),
        Scenario::OrderRushSpread => Op::Order(user(rng), vec![(product(rng), 1)]),
        Scenario::Mixed => match rng.random_range(0..100) {
            0..=54 => detail(rng),
            55..=59 => list(),
            60..=69 => popular(),
            70..=84 => {
                let lines = (0..rng.random_range(1..=2))
                    .map(|_| (product(rng), rng.random_range(1..=3)))
                    .collect();
                Op::Order(user(rng), lines)
            }
            85..=87 => Op::Balance(user(rng)),
            88..=89 => match placed.pop() {
                Some(order) => Op::Cancel(order),
                None => Op::Balance(user(rng)),
            },
            90..=94 => Op::Charge(user(rng)),
            _ => Op::Issue(user(rng)),
        },
    }
}

async fn send(api: &Api, fixture: &Fixture, op: &Op) -> anyhow::Result<Reply> {
    let token = |u: usize| fixture.users[u].token.as_str();
    match op {
        Op::Get(path) => api.get(path, None).await,
        Op::Balance(u) => api.get("/api/v1/me/balance", Some(token(*u))).await,
        Op::Charge(u) => api.charge(&fixture.users[*u], CHARGE).await,
        Op::Issue(u) => {
            let (coupon, _) = fixture.coupon.expect("coupon scenarios have a coupon");
            api.post(&format!("/api/v1/coupons/{coupon}/issue"), token(*u), None)
                .await
        }
        Op::Order(u, lines) => {
            api.post("/api/v1/orders", token(*u), Some(&order_body(lines)))
                .await
        }
        Op::Cancel(order) => {
            let path = format!("/api/v1/orders/{}/cancel", order.id);
            api.post(&path, token(order.user), None).await
        }
    }
}

fn order_body(lines: &[(i64, i64)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
        .collect();
    json!({ "items": items })
}

/// Books a success in the ledger, to be compared with the server's state afterwards.
fn book(ledger: &mut Ledger, fixture: &Fixture, op: &Op, reply: &Reply) {
    match (op, reply.status) {
        (Op::Charge(u), 200) => ledger.charged(fixture.users[*u].id, CHARGE),
        (Op::Issue(_), 201) => ledger.issued(),
        (Op::Order(u, lines), 201) => ledger.ordered(fixture.users[*u].id, lines, &reply.body),
        (Op::Cancel(order), 200) => {
            ledger.cancelled(fixture.users[order.user].id, &order.lines, &reply.body)
        }
        _ => {}
    }
}

/// One connection's worth of a scenario, keeping its own ledger so workers never contend.
pub struct HttpWorker {
    api: Api,
    scenario: Scenario,
    fixture: Arc<Fixture>,
    rng: SmallRng,
    pub ledger: Ledger,
    /// Orders placed in a scenario that cancels some (mixed).
    placed: Vec<Placed>,
}

impl HttpWorker {
    pub fn new(api: &Api, scenario: Scenario, fixture: &Arc<Fixture>, n: usize) -> HttpWorker {
        HttpWorker {
            api: api.clone(),
            scenario,
            fixture: fixture.clone(),
            // Seeded per worker: the same run sends the same mix.
            rng: SmallRng::seed_from_u64(n as u64),
            ledger: Ledger::default(),
            placed: Vec::new(),
        }
    }
}

impl Worker for HttpWorker {
    async fn step(&mut self, turn: u64) -> Option<Answer> {
        let op = choose(
            self.scenario,
            &self.fixture,
            &mut self.rng,
            turn,
            &mut self.placed,
        );
        let reply = send(&self.api, &self.fixture, &op).await.ok()?;
        book(&mut self.ledger, &self.fixture, &op, &reply);
        if let (Scenario::Mixed, Op::Order(user, lines), 201) = (self.scenario, op, reply.status) {
            if let Some(id) = reply.body["id"].as_i64() {
                self.placed.push(Placed { user, id, lines });
            }
        }
        Some(reply.answer())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(api: &Api) -> Fixture {
        Fixture {
            products: vec![11, 12, 13],
            initial_stock: 10,
            coupon: Some((5, 100)),
            users: (1..=4).map(|id| api.user(id)).collect(),
        }
    }

    #[test]
    fn a_rush_gives_each_user_exactly_one_turn() {
        let api = Api::new("http://127.0.0.1:1", "secret", 1).unwrap();
        let fixture = fixture(&api);
        let mut rng = SmallRng::seed_from_u64(0);
        for turn in 0..4 {
            assert_eq!(
                choose(
                    Scenario::CouponRush,
                    &fixture,
                    &mut rng,
                    turn,
                    &mut Vec::new()
                ),
                Op::Issue(turn as usize)
            );
            assert_eq!(
                choose(
                    Scenario::OrderRushHot,
                    &fixture,
                    &mut rng,
                    turn,
                    &mut Vec::new()
                ),
                Op::Order(turn as usize, vec![(11, 1)])
            );
        }
    }

    #[test]
    fn only_successes_are_booked() {
        let api = Api::new("http://127.0.0.1:1", "secret", 1).unwrap();
        let fixture = fixture(&api);
        let mut ledger = Ledger::default();
        let paid = Reply {
            status: 201,
            body: json!({"paid_amount": 300}),
        };
        let refused = Reply {
            status: 409,
            body: json!({"code": "OUT_OF_STOCK"}),
        };
        let order = Op::Order(1, vec![(12, 3)]);
        book(&mut ledger, &fixture, &order, &paid);
        book(&mut ledger, &fixture, &order, &refused);
        book(&mut ledger, &fixture, &Op::Issue(0), &refused);
        assert_eq!(ledger.sold_of(12), 3);
        assert_eq!(ledger.balance_of(2), -300);
        let cancel = |id| {
            Op::Cancel(Placed {
                user: 1,
                id,
                lines: vec![(12, 3)],
            })
        };
        let cancelled = Reply {
            status: 200,
            body: json!({"paid_amount": 300, "status": "CANCELLED"}),
        };
        book(&mut ledger, &fixture, &cancel(1), &cancelled);
        book(&mut ledger, &fixture, &cancel(2), &refused);
        assert_eq!(ledger.sold_of(12), 0);
        assert_eq!(ledger.balance_of(2), 0);
        assert_eq!(ledger.issued_count(), 0);
        assert_eq!(refused.answer().code.as_deref(), Some("OUT_OF_STOCK"));
    }
}
