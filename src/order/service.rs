use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

use super::errors::OrderError;
use super::model::Order;
use super::placing::Placing;
use super::request::OrderRequest;
use crate::clock::Clock;
use crate::events::SoldItem;
use crate::http::ErrorCode;
use crate::idempotency::{Attempt, IdempotencyKey, Outcome};
use crate::ids::{OrderId, ProductId, UserId};
use crate::outbox;
use crate::page::{Page, PageRequest};
use crate::product::ProductCache;
use crate::store::{Conn, Db, StoreError};

/// What placing, cancelling and reading orders use.
#[derive(Clone)]
pub struct OrderState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// Products an order changed are read afresh.
    pub products: Arc<ProductCache>,
    /// Woken when an order's events are committed.
    pub outbox: outbox::Signal,
    /// How long after placing it its owner may cancel an order.
    pub cancel_window: Duration,
}

/// Places an order: decided and stored together with the orders waiting at the same moment,
/// in one transaction (see `placing`). Honours an idempotency key.
pub async fn place(
    state: &OrderState,
    user: UserId,
    request: OrderRequest,
    key: Option<IdempotencyKey>,
) -> Outcome<Order, OrderError> {
    let attempt = key.map(|key| Attempt::new(user, key, "POST /orders", &request));
    let placing = Placing {
        user,
        request,
        attempt,
        now: state.clock.now(),
        traceparent: crate::telemetry::traceparent(&tracing::Span::current()),
    };
    let outcome = state.db.write_shared(placing).await;
    settle(
        state,
        &outcome,
        "orders_placed_total",
        "orders_failed_total",
    );
    outcome
}

/// After a committed order write (placed or cancelled): the products it changed are read
/// afresh, the outbox relay is woken, and the outcome is counted, failures by reason.
pub(super) fn settle(
    state: &OrderState,
    outcome: &Outcome<Order, OrderError>,
    done: &'static str,
    failed: &'static str,
) {
    match outcome {
        Outcome::Fresh(Ok(order)) => {
            state.products.forget(
                order
                    .items
                    .iter()
                    .filter_map(|l| ProductId::new(l.product_id)),
            );
            state.outbox.notify();
            metrics::counter!(done).increment(1);
        }
        Outcome::Fresh(Err(error)) => {
            metrics::counter!(failed, "reason" => error.code().map_or("STORAGE", ErrorCode::as_str))
                .increment(1)
        }
        Outcome::Replayed(_) => {}
    }
}

/// One of the caller's orders; another user's order is not found.
pub async fn get(db: &Db, user: UserId, id: OrderId) -> Result<Order, OrderError> {
    db.read()
        .await?
        .order(id)
        .await?
        .filter(|order| order.user_id == user.get())
        .map(Order::from)
        .ok_or(OrderError::NotFound(id.get()))
}

/// The caller's orders, newest first.
pub async fn list_mine(
    db: &Db,
    user: UserId,
    page: PageRequest,
) -> Result<Page<Order>, OrderError> {
    let rows = db.read().await?.orders_of(user, page).await?;
    let orders = rows.into_iter().map(Order::from).collect();
    Ok(Page::from_rows(orders, page, |o| o.id))
}

/// Per-product quantity and amount of the paid orders created in `[from, to)`, by product
/// id: the order side of the daily sales job.
pub async fn sales_between(
    conn: &mut dyn Conn,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<SoldItem>, StoreError> {
    conn.sales_between(from, to).await
}
