//! What the successful responses said happened, and the checks that the server's state agrees:
//! no oversell, no more coupons than the campaign has, balance = charges - payments + refunds.

use anyhow::Context;
use futures::stream::{self, StreamExt, TryStreamExt};

use commerce_test_support::invariants as stored;
use commerce_test_support::Raw;

use crate::api::Api;
use crate::check::Check;
use crate::ledger::Ledger;
use crate::stats::Summary;

use super::fixture::Fixture;
use super::kind::Scenario;

/// Balances read back after a run; more users than this are sampled.
const BALANCE_SAMPLE: usize = 500;
/// Verification reads in flight at once.
const READ_PARALLELISM: usize = 32;

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

/// The kit's invariants of stored state, read from the database itself: balances against their
/// history, the fixture's stock against its paid orders, coupons issued against coupons held,
/// one event per order.
pub async fn stored(database_url: &str, fixture: &Fixture) -> anyhow::Result<Vec<Check>> {
    let raw = Raw::try_connect(database_url).await?;
    let initial: Vec<(i64, i64)> = fixture
        .products
        .iter()
        .map(|&product| (product, fixture.initial_stock))
        .collect();
    let mut checks = stored::all(&raw).await?;
    if !initial.is_empty() {
        checks.push(stored::stock(&raw, &initial).await?);
    }
    raw.close().await;
    Ok(checks)
}

/// A rush is only fair if everyone got an answer; a 500 is a bug under any load.
fn answered(summary: &Summary) -> Check {
    let internal = summary.statuses.get(&500).copied().unwrap_or(0);
    Check::new(
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
            Check::new(
                false,
                format!("product {product}: stock {before} -> {now}, but orders took {sold}"),
            )
        })
        .collect();
    checks.push(Check::new(
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
        checks.push(Check::new(
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
    let mut checks = vec![Check::new(
        issued == successes && issued <= total,
        format!(
            "coupon {coupon}: {issued} of {total} issued, {successes} successful issue responses"
        ),
    )];
    if scenario == Scenario::CouponRush {
        let users = fixture.users.len() as i64;
        let expected = total.min(users);
        let sold_out = summary.codes.get("COUPON_SOLD_OUT").copied().unwrap_or(0) as i64;
        checks.push(Check::new(
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
                Check::new(
                    false,
                    format!(
                        "user {user}: balance {balance}, charges - payments + refunds = {expected}"
                    ),
                )
            }))
        })
        .try_collect()
        .await?;
    let summary = Check::new(
        wrong.is_empty(),
        format!(
            "{} users: balance = charges - payments + refunds",
            sample.len()
        ),
    );
    Ok(wrong.into_iter().chain([summary]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_500_or_a_lost_request_breaks_the_answered_check() {
        let mut recorder = crate::stats::Recorder::default();
        recorder.record(std::time::Duration::from_millis(1), 200, None);
        assert!(answered(&recorder.summary(std::time::Duration::from_secs(1))).ok);
        recorder.record(std::time::Duration::from_millis(1), 500, Some("INTERNAL"));
        assert!(!answered(&recorder.summary(std::time::Duration::from_secs(1))).ok);
    }
}
