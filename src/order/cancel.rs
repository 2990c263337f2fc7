//! Cancelling an order: the seed's compensation offered as a user action. One savepoint of the
//! committer's transaction marks the order cancelled (at most once under any concurrency), returns every line to
//! stock (and its units to the user's purchase limits), makes the coupon usable again, refunds
//! the balance and records the event that takes the order's sales off the data platform's
//! figures.

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use std::time::Duration;

use super::errors::OrderError;
use super::events::{self, OrderEvent};
use super::model::Order;
use super::service::{settle, OrderState};
use crate::audit::{self, Action, Entry};
use crate::http::answer::render;
use crate::idempotency::{Answer, Attempt, IdempotencyKey, Outcome};
use crate::ids::{OrderId, ProductId, UserCouponId, UserId};
use crate::money::Won;
use crate::store::order::{OrderRow, OrderStatus};
use crate::store::{close_savepoint, Conn, Row, Shared, StoreError, WriteKind};

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

/// Cancels order `id`: run by the committer with the cancellations waiting at the same moment,
/// one after another (see [`Cancelling`]). Honours an idempotency key.
pub async fn cancel(
    state: &OrderState,
    by: Canceller,
    id: OrderId,
    key: Option<IdempotencyKey>,
) -> Outcome<Order, OrderError> {
    let attempt = key.map(|key| Attempt::new(by.user(), key, by.operation(), &id.get()));
    let cancelling = Cancelling {
        by,
        id,
        window: state.cancel_window,
        now: state.clock.now(),
        attempt,
        // Taken here: the write runs in its batch's span, not the request's.
        traceparent: crate::telemetry::traceparent(&tracing::Span::current()),
    };
    let outcome = state.db.write_shared(cancelling).await;
    settle(
        state,
        &outcome,
        "orders_cancelled_total",
        "order_cancels_failed_total",
    );
    outcome
}

/// One cancellation, as its request asked.
struct Cancelling {
    by: Canceller,
    id: OrderId,
    window: Duration,
    now: DateTime<Utc>,
    attempt: Option<Attempt>,
    traceparent: Option<String>,
}

#[async_trait]
impl Shared for Cancelling {
    type Value = Order;
    type Error = OrderError;
    const KIND: WriteKind = WriteKind::Cancellations;

    /// Which rows are unknown before the order is read: a row held elsewhere answers this
    /// cancellation alone (see `run_all`).
    fn rows(&self, _rows: &mut Vec<Row>) {}

    fn attempt(&self) -> Option<&Attempt> {
        self.attempt.as_ref()
    }

    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn remember(result: &Result<Order, OrderError>) -> Option<Answer> {
        render(StatusCode::OK, result)
    }

    /// One after another, each in a savepoint: a refusal, or a row another session holds past
    /// the lock timeout, undoes that cancellation alone and the others go on.
    async fn run_all(
        conn: &mut dyn Conn,
        cancellations: &[&Cancelling],
    ) -> Result<Vec<Result<Order, OrderError>>, StoreError> {
        let mut results = Vec::with_capacity(cancellations.len());
        for c in cancellations {
            conn.savepoint().await?;
            let result = execute(conn, c).await;
            close_savepoint(conn, &result).await?;
            results.push(result);
        }
        Ok(results)
    }
}

/// The steps of a cancellation, inside the caller's transaction. Lock order, as for placing
/// an order after the order row itself: products ascending, their holdings, then the coupon,
/// then the balance.
async fn execute(conn: &mut dyn Conn, c: &Cancelling) -> Result<Order, OrderError> {
    let (by, id, window, now) = (c.by, c.id, c.window, c.now);
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
    let owner = UserId::new(order.user_id).ok_or_else(|| StoreError::corrupt(order.user_id))?;
    let mut lines = Vec::with_capacity(order.items.len());
    for line in &order.items {
        let product =
            ProductId::new(line.product_id).ok_or_else(|| StoreError::corrupt(line.product_id))?;
        conn.restock(product, line.quantity).await?;
        lines.push((product, line.quantity));
    }
    // The units count against a purchase limit no more; after the products' locks, as for
    // placing an order.
    conn.release_holdings(owner, &lines).await?;
    if let Some(coupon) = order.user_coupon_id {
        let coupon = UserCouponId::new(coupon).ok_or_else(|| StoreError::corrupt(coupon))?;
        conn.release_coupon(coupon, id).await?;
    }
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
    // The admin's cancellation is audited in its own savepoint: a refusal leaves no entry.
    let before = match by {
        Canceller::Admin(actor) => Some((actor, audit::value(&Order::from(order.clone())))),
        Canceller::Owner(_) => None,
    };
    let event = OrderEvent {
        order_id: id.get(),
        user_id: order.user_id,
        paid_at: order.created_at,
        cancelled_at: Some(now),
        lines: &order.items,
        traceparent: c.traceparent.clone(),
    };
    events::record(conn, &[event]).await?;
    order.status = OrderStatus::Cancelled;
    order.cancelled_at = Some(now);
    let cancelled = Order::from(order);
    if let Some((actor, before)) = before {
        let entry = Entry {
            actor,
            action: Action::OrderCancel,
            resource: format!("order:{}", id.get()),
            before: Some(before),
            after: Some(audit::value(&cancelled)),
            at: now,
        };
        audit::record(conn, &entry).await?;
    }
    Ok(cancelled)
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
