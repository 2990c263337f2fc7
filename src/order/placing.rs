//! Orders placed together: the orders waiting at one moment are decided in arrival order
//! against rows locked once, and written with a few statements for all of them (see
//! `store::Shared`). A refused order writes nothing, so the others are untouched by it.
//!
//! The rules are the ones of a single order, in its order of checks: each line's product must
//! exist, be inside its sale window at the order's `now`, stay within its purchase limit (what
//! the user holds in paid orders, the batch's earlier orders included) and have the quantity,
//! the coupon must be the user's, unused and unexpired, the total must reach the coupon's
//! minimum, and the balance must cover what is left to pay.

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};

use super::errors::OrderError;
use super::events::{self, OrderEvent};
use super::model::{not_usable, view, Order, OrderLine};
use super::pricing::{price, Pricing, Unpriced};
use super::request::OrderRequest;
use crate::balance::debit;
use crate::coupon::{redeem, usable};
use crate::http::answer::render;
use crate::idempotency::{Answer, Attempt};
use crate::ids::{ProductId, UserCouponId, UserId};
use crate::money::Won;
use crate::product::{limit, sale, stock};
use crate::store::balance::PaymentRow;
use crate::store::coupon::HeldCouponRow;
use crate::store::order::{NewOrderRow, OrderLineRow};
use crate::store::product::{Holding, ProductRow};
use crate::store::{Conn, Row, Shared, StoreError, WriteKind};

/// One order to place, as its request asked.
pub(super) struct Placing {
    pub user: UserId,
    pub request: OrderRequest,
    pub attempt: Option<Attempt>,
    pub now: DateTime<Utc>,
    /// Its request's `traceparent`: the batch runs in a span of its own, and the order's event
    /// belongs to the request's trace.
    pub traceparent: Option<String>,
}

#[async_trait]
impl Shared for Placing {
    type Value = Order;
    type Error = OrderError;
    const KIND: WriteKind = WriteKind::Orders;

    fn rows(&self, rows: &mut Vec<Row>) {
        rows.extend(
            self.request
                .lines()
                .iter()
                .map(|(id, _)| Row::Product(id.get())),
        );
        rows.extend(
            self.request
                .user_coupon_id()
                .map(|id| Row::UserCoupon(id.get())),
        );
        rows.push(Row::Balance(self.user.get()));
    }

    fn attempt(&self) -> Option<&Attempt> {
        self.attempt.as_ref()
    }

    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn remember(result: &Result<Order, OrderError>) -> Option<Answer> {
        render(StatusCode::CREATED, result)
    }

    /// Locks, decides in order, writes all at once.
    async fn run_all(
        conn: &mut dyn Conn,
        orders: &[&Placing],
    ) -> Result<Vec<Result<Order, OrderError>>, StoreError> {
        let mut locked = Locked::take(conn, orders).await?;
        let decided: Vec<Result<Accepted, OrderError>> =
            orders.iter().map(|order| locked.decide(order)).collect();
        write_stock(conn, &decided, &locked).await?;
        locked.write_holdings(conn).await?;
        placed(conn, orders, decided).await
    }
}

/// The rows the orders of a batch decide against, locked in the schema's order.
struct Locked {
    products: HashMap<ProductId, ProductRow>,
    coupons: HashMap<UserCouponId, HeldCouponRow>,
    balances: HashMap<UserId, Won>,
    /// Units held of limited products by the batch's users (a missing pair holds none).
    holdings: HashMap<(ProductId, UserId), i64>,
    /// The pairs accepted orders changed, to write.
    held_more: BTreeSet<(ProductId, UserId)>,
}

impl Locked {
    async fn take(conn: &mut dyn Conn, orders: &[&Placing]) -> Result<Locked, StoreError> {
        let mut products: Vec<ProductId> = orders
            .iter()
            .flat_map(|o| o.request.lines().iter().map(|&(id, _)| id))
            .collect();
        products.sort_unstable();
        products.dedup();
        let mut coupons: Vec<UserCouponId> = orders
            .iter()
            .filter_map(|o| o.request.user_coupon_id())
            .collect();
        coupons.sort_unstable();
        coupons.dedup();
        let mut users: Vec<UserId> = orders.iter().map(|o| o.user).collect();
        users.sort_unstable();
        users.dedup();

        let products = conn.lock_products(&products).await?;
        // Only limited products have holdings: a batch without one reads none.
        let limited: HashSet<ProductId> = products
            .iter()
            .filter(|p| limit::applies(p))
            .map(|p| p.id)
            .collect();
        let mut pairs: Vec<(ProductId, UserId)> = orders
            .iter()
            .flat_map(|o| o.request.lines().iter().map(|&(id, _)| (id, o.user)))
            .filter(|(id, _)| limited.contains(id))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let holdings = if pairs.is_empty() {
            Vec::new()
        } else {
            conn.lock_holdings(&pairs).await?
        };
        let coupons = if coupons.is_empty() {
            Vec::new()
        } else {
            conn.lock_user_coupons(&coupons).await?
        };
        let balances = conn.lock_balances(&users).await?;
        Ok(Locked {
            products: products.into_iter().map(|p| (p.id, p)).collect(),
            coupons: coupons.into_iter().map(|c| (c.id, c)).collect(),
            balances: balances.into_iter().collect(),
            holdings: holdings
                .into_iter()
                .map(|h| ((h.product, h.user), h.quantity))
                .collect(),
            held_more: BTreeSet::new(),
        })
    }

    /// Decides one order against the state left by the orders before it, and applies it.
    fn decide(&mut self, order: &Placing) -> Result<Accepted, OrderError> {
        let (user, now) = (order.user, order.now);
        let mut lines = Vec::with_capacity(order.request.lines().len());
        for &(id, quantity) in order.request.lines() {
            let product = self
                .products
                .get(&id)
                .ok_or(OrderError::ProductNotFound(id.get()))?;
            sale::on_sale(product, now).map_err(|closed| OrderError::NotOnSale {
                product_id: id.get(),
                window: closed.window(),
            })?;
            let held = self.holdings.get(&(id, user)).copied().unwrap_or(0);
            limit::check(product, held, quantity).map_err(|over| {
                OrderError::PurchaseLimitExceeded {
                    product_id: id.get(),
                    limit: over.limit,
                    left: over.left,
                }
            })?;
            stock::check(product, quantity).map_err(|short| OrderError::OutOfStock {
                product_id: id.get(),
                requested: quantity,
                available: short.available,
            })?;
            lines.push(OrderLineRow {
                product_id: id.get(),
                name: product.name.clone(),
                unit_price: product.price,
                quantity,
                amount: product.price * quantity,
            });
        }
        let coupon = order.request.user_coupon_id();
        let terms = match coupon {
            Some(id) => Some(
                self.coupons
                    .get(&id)
                    .and_then(|c| usable(c, user, now))
                    .ok_or_else(|| {
                        not_usable(id, "it is not yours, already used, or expired".into())
                    })?,
            ),
            None => None,
        };
        let priced: Vec<(Won, i64)> = lines
            .iter()
            .map(|l| (Won(l.unit_price), l.quantity))
            .collect();
        let pricing = price(&priced, terms.as_ref()).map_err(|unpriced| match unpriced {
            Unpriced::UnderMinimum => {
                let minimum = terms.map(|t| t.min_order_amount.get()).unwrap_or_default();
                not_usable(
                    coupon.expect("only a coupon has a minimum"),
                    format!("the order total is under its minimum of {minimum} won"),
                )
            }
            Unpriced::Overflow => OrderError::Invalid("the order total is too large".into()),
        })?;
        let balance_after = if pricing.paid == Won::ZERO {
            None
        } else {
            let balance = self.balances.get(&user).copied();
            let after =
                debit(balance, pricing.paid).map_err(|short| OrderError::InsufficientBalance {
                    balance: short.balance.get(),
                    required: pricing.paid.get(),
                })?;
            Some(after)
        };

        for &(id, quantity) in order.request.lines() {
            if let Some(product) = self.products.get_mut(&id) {
                stock::take(product, quantity);
                if limit::applies(product) {
                    *self.holdings.entry((id, user)).or_insert(0) += quantity;
                    self.held_more.insert((id, user));
                }
            }
        }
        if let Some(held) = coupon.and_then(|id| self.coupons.get_mut(&id)) {
            redeem(held);
        }
        if let Some(after) = balance_after {
            self.balances.insert(user, after);
        }
        Ok(Accepted {
            lines,
            pricing,
            coupon,
            balance_after,
        })
    }

    /// Writes what the accepted orders left the users holding of limited products.
    async fn write_holdings(&self, conn: &mut dyn Conn) -> Result<(), StoreError> {
        if self.held_more.is_empty() {
            return Ok(());
        }
        let holdings: Vec<Holding> = self
            .held_more
            .iter()
            .map(|&(product, user)| Holding {
                product,
                user,
                quantity: self.holdings[&(product, user)],
            })
            .collect();
        conn.set_holdings(&holdings).await
    }
}

/// What an accepted order will write.
struct Accepted {
    lines: Vec<OrderLineRow>,
    pricing: Pricing,
    coupon: Option<UserCouponId>,
    /// `None` when nothing is left to pay (no payment row, as for a single order).
    balance_after: Option<Won>,
}

/// Writes the stock the accepted orders left.
async fn write_stock(
    conn: &mut dyn Conn,
    decided: &[Result<Accepted, OrderError>],
    locked: &Locked,
) -> Result<(), StoreError> {
    let mut touched: Vec<ProductId> = decided
        .iter()
        .flatten()
        .flat_map(|a| a.lines.iter().filter_map(|l| ProductId::new(l.product_id)))
        .collect();
    touched.sort_unstable();
    touched.dedup();
    if touched.is_empty() {
        return Ok(());
    }
    let stocks: Vec<(ProductId, i64)> = touched
        .iter()
        .filter_map(|id| locked.products.get(id).map(|p| (*id, p.stock)))
        .collect();
    conn.set_stocks(&stocks).await
}

/// Stores the accepted orders (with their coupon uses, payments and events) and returns every
/// order's result in order.
async fn placed(
    conn: &mut dyn Conn,
    live: &[&Placing],
    decided: Vec<Result<Accepted, OrderError>>,
) -> Result<Vec<Result<Order, OrderError>>, StoreError> {
    let accepted: Vec<(&Placing, &Accepted)> = live
        .iter()
        .zip(&decided)
        .filter_map(|(order, d)| d.as_ref().ok().map(|a| (*order, a)))
        .collect();
    let rows: Vec<NewOrderRow> = accepted
        .iter()
        .map(|(order, a)| NewOrderRow {
            user: order.user,
            total_amount: a.pricing.total.get(),
            discount_amount: a.pricing.discount.get(),
            paid_amount: a.pricing.paid.get(),
            user_coupon_id: a.coupon,
            created_at: order.now,
            items: &a.lines,
        })
        .collect();
    let ids = if rows.is_empty() {
        Vec::new()
    } else {
        conn.insert_orders(&rows).await?
    };

    let uses: Vec<_> = accepted
        .iter()
        .zip(&ids)
        .filter_map(|((order, a), id)| a.coupon.map(|c| (c, *id, order.now)))
        .collect();
    if !uses.is_empty() {
        conn.use_coupons(&uses).await?;
    }
    let payments: Vec<PaymentRow> = accepted
        .iter()
        .zip(&ids)
        .filter_map(|((order, a), id)| {
            a.balance_after.map(|after| PaymentRow {
                user: order.user,
                amount: a.pricing.paid,
                order: *id,
                balance_after: after,
                at: order.now,
            })
        })
        .collect();
    if !payments.is_empty() {
        conn.record_payments(&payments).await?;
    }
    let events: Vec<OrderEvent> = accepted
        .iter()
        .zip(&ids)
        .map(|((order, a), id)| OrderEvent {
            order_id: id.get(),
            user_id: order.user.get(),
            paid_at: order.now,
            cancelled_at: None,
            lines: &a.lines,
            traceparent: order.traceparent.clone(),
        })
        .collect();
    events::record(conn, &events).await?;

    let mut ids = ids.into_iter();
    Ok(live
        .iter()
        .zip(decided)
        .map(|(order, d)| {
            let a = d?;
            let id = ids.next().expect("an id per accepted order");
            let items = a.lines.into_iter().map(OrderLine::from).collect();
            Ok(view(id, order.user, items, a.pricing, a.coupon, order.now))
        })
        .collect())
}
