//! Cancelling an order: the seed's compensation offered as a user action. One transaction
//! marks the order cancelled (at most once under any concurrency), returns every line to
//! stock, makes the coupon usable again, refunds the balance and records the event that takes
//! the order's sales off the data platform's figures.

use chrono::{DateTime, Utc};
use std::time::Duration;

use super::errors::OrderError;
use super::model::Order;
use super::service::{settle, OrderState};
use crate::events::{OrderCancelled, SoldItem, ORDER_CANCELLED};
use crate::idempotency::{self, Attempt, IdempotencyKey, Outcome, Render};
use crate::ids::{OrderId, ProductId, UserCouponId, UserId};
use crate::money::Won;
use crate::outbox;
use crate::store::order::{OrderRow, OrderStatus};
use crate::store::{Conn, StoreError};

/// Who cancels: the owner within the cancellation window, or an admin, any order, any time.
#[derive(Debug, Clone, Copy)]
pub enum Canceller {
    Owner(UserId),
    Admin(UserId),
}

impl Canceller {
    fn user(self) -> UserId {
        match self {
            Canceller::Owner(user) | Canceller::Admin(user) => user,
        }
    }

    fn operation(self) -> &'static str {
        match self {
            Canceller::Owner(_) => "POST /orders/{id}/cancel",
            Canceller::Admin(_) => "POST /admin/orders/{id}/cancel",
        }
    }
}

/// Cancels order `id` in one transaction. Honours an idempotency key.
pub async fn cancel(
    state: &OrderState,
    by: Canceller,
    id: OrderId,
    key: Option<IdempotencyKey>,
    render: Render<Order, OrderError>,
) -> Outcome<Order, OrderError> {
    let attempt = key.map(|key| Attempt::new(by.user(), key, by.operation(), &id.get()));
    let now = state.clock.now();
    let window = state.cancel_window;
    // Taken here: on SQLite the write runs in its batch's span, not the request's.
    let traceparent = crate::telemetry::traceparent(&tracing::Span::current());
    let outcome: Outcome<Order, OrderError> = state
        .db
        .write(move |conn| {
            let attempt = attempt.clone();
            let traceparent = traceparent.clone();
            Box::pin(async move {
                idempotency::once(conn, attempt.as_ref(), now, render, move |conn| {
                    Box::pin(async move {
                        execute(conn, by, id, window, now, traceparent.as_deref()).await
                    })
                })
                .await
            })
        })
        .await
        .into();
    settle(
        state,
        &outcome,
        "orders_cancelled_total",
        "order_cancels_failed_total",
    );
    outcome
}

/// The steps of a cancellation, inside the caller's transaction. Lock order, as for placing
/// an order after the order row itself: products ascending, then the coupon, then the balance.
async fn execute(
    conn: &mut dyn Conn,
    by: Canceller,
    id: OrderId,
    window: Duration,
    now: DateTime<Utc>,
    traceparent: Option<&str>,
) -> Result<Order, OrderError> {
    let mut order = conn
        .order(id)
        .await?
        .filter(|order| match by {
            Canceller::Owner(user) => order.user_id == user.get(),
            Canceller::Admin(_) => true,
        })
        .ok_or(OrderError::NotFound(id.get()))?;
    if let Canceller::Owner(_) = by {
        if outside_window(&order, window, now) {
            return Err(not_cancellable(
                id,
                format!(
                    "it was placed more than {} ago",
                    humantime::format_duration(window)
                ),
            ));
        }
    }
    // The guarded update decides between concurrent cancels: one changes the row, the others
    // find it cancelled.
    if order.status != OrderStatus::Paid || !conn.cancel_order(id, now).await? {
        return Err(not_cancellable(id, "it is already cancelled".into()));
    }
    for line in &order.items {
        let product =
            ProductId::new(line.product_id).ok_or_else(|| StoreError::corrupt(line.product_id))?;
        conn.restock(product, line.quantity).await?;
    }
    if let Some(coupon) = order.user_coupon_id {
        let coupon = UserCouponId::new(coupon).ok_or_else(|| StoreError::corrupt(coupon))?;
        conn.release_coupon(coupon, id).await?;
    }
    let owner = UserId::new(order.user_id).ok_or_else(|| StoreError::corrupt(order.user_id))?;
    if order.paid_amount > 0
        && conn
            .refund(owner, Won(order.paid_amount), id, now)
            .await?
            .is_none()
    {
        // The transaction rolls back: the order stays paid, its stock and coupon taken.
        return Err(not_cancellable(
            id,
            "the refund would take the balance past the largest amount that can be held".into(),
        ));
    }
    let event = OrderCancelled {
        order_id: id.get(),
        user_id: order.user_id,
        paid_at: order.created_at,
        cancelled_at: now,
        items: order
            .items
            .iter()
            .map(|l| SoldItem {
                product_id: l.product_id,
                quantity: l.quantity,
                amount: l.amount,
            })
            .collect(),
    };
    outbox::enqueue(conn, ORDER_CANCELLED, &event, now, traceparent).await?;
    order.status = OrderStatus::Cancelled;
    order.cancelled_at = Some(now);
    Ok(Order::from(order))
}

fn outside_window(order: &OrderRow, window: Duration, now: DateTime<Utc>) -> bool {
    chrono::Duration::from_std(window)
        .ok()
        .and_then(|window| order.created_at.checked_add_signed(window))
        .is_some_and(|deadline| now > deadline)
}

fn not_cancellable(id: OrderId, why: String) -> OrderError {
    OrderError::NotCancellable(id.get(), why)
}
