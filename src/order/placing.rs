//! Orders placed together: the orders waiting at one moment are decided in arrival order
//! against rows locked once, and written with a few statements for all of them (see
//! `store::Shared`). A refused order writes nothing, so the others are untouched by it.
//!
//! The rules are the ones of a single order, in its order of checks: each line's product must
//! exist and have the quantity, the coupon must be the user's, unused and unexpired, the total
//! must reach the coupon's minimum, and the balance must cover what is left to pay.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use super::errors::OrderError;
use super::model::{not_usable, view, Order, OrderLine};
use super::pricing::{price, Pricing, Unpriced};
use super::request::OrderRequest;
use crate::coupon::Terms;
use crate::events::{OrderPaid, SoldItem, ORDER_PAID};
use crate::idempotency::{self, Attempt, Keyed, Outcome, Render};
use crate::ids::{ProductId, UserCouponId, UserId};
use crate::money::Won;
use crate::store::balance::PaymentRow;
use crate::store::coupon::HeldCouponRow;
use crate::store::order::{NewOrderRow, OrderLineRow};
use crate::store::product::ProductRow;
use crate::store::{Conn, Row, Shared, StoreError};

/// One order to place, as its request asked.
pub(super) struct Placing {
    pub user: UserId,
    pub request: OrderRequest,
    pub attempt: Option<Attempt>,
    pub now: DateTime<Utc>,
    pub render: Render<Order, OrderError>,
    /// Its request's `traceparent`: the batch runs in a span of its own, and the order's event
    /// belongs to the request's trace.
    pub traceparent: Option<String>,
}

#[async_trait]
impl Shared for Placing {
    type Output = Outcome<Order, OrderError>;
    const LOCK_ORDER: u8 = 0;

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

    async fn run_all(
        conn: &mut dyn Conn,
        orders: &[&Placing],
    ) -> Result<Vec<Self::Output>, StoreError> {
        idempotency::decide_keyed(conn, orders).await
    }

    fn failed(error: StoreError) -> Self::Output {
        Outcome::Fresh(Err(error.into()))
    }
}

#[async_trait]
impl Keyed for Placing {
    type Value = Order;
    type Error = OrderError;

    fn attempt(&self) -> Option<&Attempt> {
        self.attempt.as_ref()
    }

    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn render(&self) -> Render<Order, OrderError> {
        self.render
    }

    /// Locks, decides in order, writes all at once.
    async fn decide_all(
        conn: &mut dyn Conn,
        orders: &[&Placing],
    ) -> Result<Vec<Result<Order, OrderError>>, StoreError> {
        let mut locked = Locked::take(conn, orders).await?;
        let decided: Vec<Result<Accepted, OrderError>> =
            orders.iter().map(|order| locked.decide(order)).collect();
        write_stock(conn, &decided, &locked).await?;
        placed(conn, orders, decided).await
    }
}

/// The rows the orders of a batch decide against, locked in the schema's order.
struct Locked {
    products: HashMap<ProductId, ProductRow>,
    coupons: HashMap<UserCouponId, HeldCouponRow>,
    balances: HashMap<UserId, Won>,
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
            if product.stock < quantity {
                return Err(OrderError::OutOfStock {
                    product_id: id.get(),
                    requested: quantity,
                    available: product.stock,
                });
            }
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
                    .filter(|c| c.user_id == user.get() && !c.used && c.expires_at > now)
                    .map(|c| Terms::from(c.terms))
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
            match balance.filter(|b| *b >= pricing.paid) {
                Some(balance) => Some(balance - pricing.paid),
                None => {
                    return Err(OrderError::InsufficientBalance {
                        balance: balance.unwrap_or(Won::ZERO).get(),
                        required: pricing.paid.get(),
                    })
                }
            }
        };

        for (id, quantity) in order.request.lines() {
            if let Some(product) = self.products.get_mut(id) {
                product.stock -= quantity;
            }
        }
        if let Some(held) = coupon.and_then(|id| self.coupons.get_mut(&id)) {
            held.used = true;
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
    let events = accepted
        .iter()
        .zip(&ids)
        .map(|((order, a), id)| {
            let event = OrderPaid {
                order_id: id.get(),
                user_id: order.user.get(),
                paid_at: order.now,
                items: a
                    .lines
                    .iter()
                    .map(|l| SoldItem {
                        product_id: l.product_id,
                        quantity: l.quantity,
                        amount: l.amount,
                    })
                    .collect(),
            };
            let payload = serde_json::to_string(&event).map_err(StoreError::corrupt)?;
            Ok((payload, order.now, order.traceparent.clone()))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if !events.is_empty() {
        conn.insert_events(ORDER_PAID, &events).await?;
    }

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
