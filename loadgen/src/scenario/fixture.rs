//! The data a scenario runs on, created through the admin API before the clock starts.

use anyhow::bail;
use futures::stream::{self, StreamExt, TryStreamExt};
use rand::Rng;
use serde_json::json;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::LazyLock;

use super::kind::Scenario;
use crate::api::{Api, User};
use crate::ledger::Ledger;
use crate::plan::LoadArgs;

/// Every product costs this much, so one charge pays for many orders.
pub const PRICE: i64 = 100;
/// Stock no time-bound run can exhaust.
const PLENTY: i64 = 1_000_000_000;
/// Set-up requests in flight at once.
const SETUP_PARALLELISM: usize = 32;

pub struct Fixture {
    pub products: Vec<i64>,
    /// What each product had when created, for the stock check.
    pub initial_stock: i64,
    /// The campaign's id and total quantity.
    pub coupon: Option<(i64, i64)>,
    pub users: Vec<User>,
}

/// How much of what a scenario needs.
struct Shape {
    products: usize,
    stock: i64,
    users: usize,
    /// Charged to every user before the run.
    funds: i64,
    coupons: Option<i64>,
    /// Orders placed before the run, so popular products has five to show.
    warm_sales: bool,
    /// The purchase limit when the products are sold as a flash sale (with a sale window too),
    /// so the rushes measure the order path with those checks; set where it never binds (each
    /// hot-rush user orders once; a spread-rush user's orders of one product stay far below it).
    flash: Option<i64>,
}

fn shape(scenario: Scenario, args: &LoadArgs) -> Shape {
    let none = Shape {
        products: 0,
        stock: 0,
        users: 0,
        funds: 0,
        coupons: None,
        warm_sales: false,
        flash: None,
    };
    match scenario {
        Scenario::Health => none,
        Scenario::Detail | Scenario::Popular | Scenario::Browse => Shape {
            products: 50,
            stock: PLENTY,
            users: 20,
            funds: 100_000,
            warm_sales: true,
            ..none
        },
        Scenario::Charge => Shape {
            users: 1_000,
            ..none
        },
        Scenario::CouponRush => Shape {
            users: args.users,
            coupons: Some(args.coupons),
            ..none
        },
        Scenario::OrderRushHot => Shape {
            products: 1,
            stock: args.stock,
            users: args.users,
            funds: 10 * PRICE,
            flash: Some(1),
            ..none
        },
        Scenario::OrderRushSpread => Shape {
            products: 1_000,
            stock: PLENTY,
            users: 1_000,
            funds: 1_000_000,
            flash: Some(1_000),
            ..none
        },
        Scenario::Mixed => Shape {
            products: 200,
            stock: PLENTY,
            users: 1_000,
            funds: 1_000_000,
            // More coupons than users: the rush is the coupon-rush scenario's business.
            coupons: Some(1_000_000),
            warm_sales: false,
            flash: None,
        },
    }
}

/// A flash sale's controls: a window that opened an hour ago and closes in a day, so every
/// order of the run is inside it and pays for the check, and a purchase limit.
fn flash(max_per_user: i64) -> serde_json::Value {
    let now = chrono::Utc::now();
    json!({
        "sale_starts_at": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "sale_ends_at": (now + chrono::Duration::days(1)).to_rfc3339(),
        "max_per_user": max_per_user,
    })
}

/// Runs against one database must never share a user, nor scenarios within a run: each takes
/// fresh ids from a random base far above what people use by hand.
static NEXT_USER: LazyLock<AtomicI64> = LazyLock::new(|| {
    AtomicI64::new(10_000_000 + rand::rng().random_range(0..1_000_000_000) * 1_000_000)
});

impl Fixture {
    /// What a rush sells out: the campaign's coupons or the hot product's units.
    pub fn available(&self, scenario: Scenario) -> Option<u64> {
        let count = match scenario {
            Scenario::CouponRush => self.coupon?.1,
            Scenario::OrderRushHot => self.initial_stock,
            _ => return None,
        };
        u64::try_from(count).ok()
    }

    /// Creates the scenario's products, coupon and users, charging the users (in `ledger`).
    pub async fn prepare(
        api: &Api,
        scenario: Scenario,
        args: &LoadArgs,
        ledger: &mut Ledger,
    ) -> anyhow::Result<Fixture> {
        let shape = shape(scenario, args);
        let controls = shape.flash.map_or_else(|| json!({}), flash);
        let products: Vec<i64> = stream::iter(0..shape.products)
            .map(|n| {
                let controls = controls.clone();
                async move {
                    let name = format!("{} {n}", scenario.name());
                    api.create_product(&name, PRICE, shape.stock, controls)
                        .await
                }
            })
            .buffered(SETUP_PARALLELISM)
            .try_collect()
            .await?;
        let coupon = match shape.coupons {
            Some(total) => Some((api.create_coupon(total).await?, total)),
            None => None,
        };
        let first = NEXT_USER.fetch_add(shape.users as i64, Ordering::Relaxed);
        let users: Vec<User> = (first..first + shape.users as i64)
            .map(|id| api.user(id))
            .collect();
        if shape.funds > 0 {
            stream::iter(&users)
                .map(|user| api.fund(user, shape.funds))
                .buffer_unordered(SETUP_PARALLELISM)
                .try_collect::<()>()
                .await?;
            for user in &users {
                ledger.charged(user.id, shape.funds);
            }
        }
        let fixture = Fixture {
            products,
            initial_stock: shape.stock,
            coupon,
            users,
        };
        if shape.warm_sales {
            fixture.warm_sales(api, ledger).await?;
        }
        Ok(fixture)
    }

    /// One order per user over a few products, unevenly, so the popular ranking has an order.
    async fn warm_sales(&self, api: &Api, ledger: &mut Ledger) -> anyhow::Result<()> {
        for (i, user) in self.users.iter().enumerate() {
            let (product, quantity) = (self.products[i % 7], 1 + i as i64 % 3);
            let body = json!({"items": [{"product_id": product, "quantity": quantity}]});
            let reply = api.post("/api/v1/orders", &user.token, Some(&body)).await?;
            if reply.status != 201 {
                bail!("a warm-up order answered {}: {}", reply.status, reply.body);
            }
            ledger.ordered(user.id, &[(product, quantity)], &reply.body);
        }
        Ok(())
    }
}
