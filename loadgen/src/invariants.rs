//! What the successful responses said happened, and the checks that the server's state agrees:
//! no oversell, no more coupons than the campaign has, balance = charges - payments + refunds.

use anyhow::Context;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;
use std::collections::HashMap;

use crate::api::Api;
use crate::scenario::{Fixture, Scenario};
use crate::stats::Summary;

/// Balances read back after a run; more users than this are sampled.
const BALANCE_SAMPLE: usize = 500;
/// Verification reads in flight at once.
const READ_PARALLELISM: usize = 32;

/// The effects the successful responses announced.
#[derive(Debug, Default)]
pub struct Ledger {
    sold: HashMap<i64, i64>,
    charged: HashMap<i64, i64>,
    paid: HashMap<i64, i64>,
    refunded: HashMap<i64, i64>,
    issued: i64,
}

impl Ledger {
    pub fn charged(&mut self, user: i64, amount: i64) {
        *self.charged.entry(user).or_default() += amount;
    }

    /// A 201 order: its lines left the stock, its `paid_amount` left the balance.
    pub fn ordered(&mut self, user: i64, lines: &[(i64, i64)], order: &Value) {
        for (product, quantity) in lines {
            *self.sold.entry(*product).or_default() += quantity;
        }
        *self.paid.entry(user).or_default() += order["paid_amount"].as_i64().unwrap_or(0);
    }

    /// A 200 cancellation: the order's lines went back to the stock, its `paid_amount` back to
    /// the balance.
    pub fn cancelled(&mut self, user: i64, lines: &[(i64, i64)], order: &Value) {
        for (product, quantity) in lines {
            *self.sold.entry(*product).or_default() -= quantity;
        }
        *self.refunded.entry(user).or_default() += order["paid_amount"].as_i64().unwrap_or(0);
    }

    pub fn issued(&mut self) {
        self.issued += 1;
    }

    pub fn merge(&mut self, other: &Ledger) {
        for (mine, theirs) in [
            (&mut self.sold, &other.sold),
            (&mut self.charged, &other.charged),
            (&mut self.paid, &other.paid),
            (&mut self.refunded, &other.refunded),
        ] {
            for (key, n) in theirs {
                *mine.entry(*key).or_default() += n;
            }
        }
        self.issued += other.issued;
    }

    pub fn sold_of(&self, product: i64) -> i64 {
        self.sold.get(&product).copied().unwrap_or(0)
    }

    pub fn balance_of(&self, user: i64) -> i64 {
        let of = |map: &HashMap<i64, i64>| map.get(&user).copied().unwrap_or(0);
        of(&self.charged) - of(&self.paid) + of(&self.refunded)
    }

    pub fn issued_count(&self) -> i64 {
        self.issued
    }

    fn touched(&self, user: i64) -> bool {
        self.charged.contains_key(&user) || self.paid.contains_key(&user)
    }
}

/// One invariant and whether it held.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub ok: bool,
    pub what: String,
}

fn check(ok: bool, what: String) -> Check {
    Check { ok, what }
}

/// Reads the server's state back and compares it with the ledger, one check per invariant.
pub async fn verify(
    api: &Api,
    scenario: Scenario,
    fixture: &Fixture,
    ledger: &Ledger,
    summary: &Summary,
) -> anyhow::Result<Vec<Check>> {
    let mut checks = vec![answered(summary)];
    if !fixture.products.is_empty() {
        checks.extend(stock(api, scenario, fixture, ledger).await?);
    }
    if let Some((coupon, total)) = fixture.coupon {
        checks.extend(coupons(api, scenario, fixture, coupon, total, ledger, summary).await?);
    }
    checks.extend(balances(api, fixture, ledger).await?);
    Ok(checks)
}

/// A rush is only fair if everyone got an answer; a 500 is a bug under any load.
fn answered(summary: &Summary) -> Check {
    let internal = summary.statuses.get(&500).copied().unwrap_or(0);
    check(
        summary.errors == 0 && internal == 0,
        format!(
            "every request answered: {} without an answer, {internal} with 500",
            summary.errors
        ),
    )
}

async fn stock(
    api: &Api,
    scenario: Scenario,
    fixture: &Fixture,
    ledger: &Ledger,
) -> anyhow::Result<Vec<Check>> {
    let now: Vec<i64> = stream::iter(&fixture.products)
        .map(|product| async move {
            let body = api
                .read(&format!("/api/v1/products/{product}"), None)
                .await?;
            body["stock"].as_i64().context("a product's stock")
        })
        .buffered(READ_PARALLELISM)
        .try_collect()
        .await?;
    let before = fixture.initial_stock;
    let mut checks: Vec<Check> = fixture
        .products
        .iter()
        .zip(&now)
        .map(|(product, now)| (product, *now, ledger.sold_of(*product)))
        .filter(|(_, now, sold)| before - now != *sold || *now < 0)
        .map(|(product, now, sold)| {
            check(
                false,
                format!("product {product}: stock {before} -> {now}, but orders took {sold}"),
            )
        })
        .collect();
    checks.push(check(
        checks.is_empty(),
        format!(
            "{} products: stock before - stock after = units in paid orders, none below 0",
            fixture.products.len()
        ),
    ));
    if scenario == Scenario::OrderRushHot {
        // Users with money each ask for one unit: the product must sell out exactly.
        let expected = before.min(fixture.users.len() as i64);
        let sold = ledger.sold_of(fixture.products[0]);
        checks.push(check(
            sold == expected,
            format!(
                "hot product: {sold} sold to {} users for {before} units, expected {expected}",
                fixture.users.len()
            ),
        ));
    }
    Ok(checks)
}

async fn coupons(
    api: &Api,
    scenario: Scenario,
    fixture: &Fixture,
    coupon: i64,
    total: i64,
    ledger: &Ledger,
    summary: &Summary,
) -> anyhow::Result<Vec<Check>> {
    let body = api.read(&format!("/api/v1/coupons/{coupon}"), None).await?;
    let issued = body["issued_quantity"]
        .as_i64()
        .context("issued_quantity")?;
    let successes = ledger.issued_count();
    let mut checks = vec![check(
        issued == successes && issued <= total,
        format!(
            "coupon {coupon}: {issued} of {total} issued, {successes} successful issue responses"
        ),
    )];
    if scenario == Scenario::CouponRush {
        let users = fixture.users.len() as i64;
        let expected = total.min(users);
        let sold_out = summary.codes.get("COUPON_SOLD_OUT").copied().unwrap_or(0) as i64;
        checks.push(check(
            successes == expected && successes + sold_out == users,
            format!(
                "{users} users for {total} coupons: {successes} issued (expected {expected}), \
                 {sold_out} sold out, {} otherwise",
                users - successes - sold_out
            ),
        ));
    }
    Ok(checks)
}

async fn balances(api: &Api, fixture: &Fixture, ledger: &Ledger) -> anyhow::Result<Vec<Check>> {
    let sample: Vec<_> = fixture
        .users
        .iter()
        .filter(|user| ledger.touched(user.id))
        .take(BALANCE_SAMPLE)
        .collect();
    if sample.is_empty() {
        return Ok(Vec::new());
    }
    let wrong: Vec<Check> = stream::iter(&sample)
        .map(|user| async move {
            let body = api.read("/api/v1/me/balance", Some(&user.token)).await?;
            let balance = body["balance"].as_i64().context("a balance")?;
            anyhow::Ok((user.id, balance))
        })
        .buffered(READ_PARALLELISM)
        .try_filter_map(|(user, balance)| async move {
            let expected = ledger.balance_of(user);
            Ok((balance != expected).then(|| {
                check(
                    false,
                    format!(
                        "user {user}: balance {balance}, charges - payments + refunds = {expected}"
                    ),
                )
            }))
        })
        .try_collect()
        .await?;
    let summary = check(
        wrong.is_empty(),
        format!(
            "{} users: balance = charges - payments + refunds",
            sample.len()
        ),
    );
    Ok(wrong.into_iter().chain([summary]).collect())
}

/// Prints the checks; true when all held.
pub fn print(checks: &[Check]) -> bool {
    for Check { ok, what } in checks {
        println!("  {} {what}", if *ok { "ok    " } else { "BROKEN" });
    }
    checks.iter().all(|c| c.ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ledgers_of_workers_add_up() {
        let mut a = Ledger::default();
        let mut b = Ledger::default();
        a.charged(7, 10_000);
        a.ordered(7, &[(1, 2), (2, 1)], &json!({"paid_amount": 300}));
        b.ordered(7, &[(1, 1)], &json!({"paid_amount": 100}));
        b.issued();
        a.merge(&b);
        assert_eq!(a.sold_of(1), 3);
        assert_eq!(a.sold_of(2), 1);
        assert_eq!(a.balance_of(7), 9_600);
        assert_eq!(a.issued_count(), 1);
        assert!(a.touched(7) && !a.touched(8));
    }

    #[test]
    fn a_500_or_a_lost_request_breaks_the_answered_check() {
        let mut recorder = crate::stats::Recorder::default();
        recorder.record(std::time::Duration::from_millis(1), 200, None);
        assert!(answered(&recorder.summary(std::time::Duration::from_secs(1))).ok);
        recorder.record(std::time::Duration::from_millis(1), 500, Some("INTERNAL"));
        assert!(!answered(&recorder.summary(std::time::Duration::from_secs(1))).ok);
    }
}
