//! The order's events, built in one place and written to the outbox one way (a batch of
//! events of one topic, in the write's transaction).

use chrono::{DateTime, Utc};

use crate::events::{OrderCancelled, OrderPaid, SoldItem, ORDER_CANCELLED, ORDER_PAID};
use crate::store::order::OrderLineRow;
use crate::store::outbox::NewEvent;
use crate::store::{Conn, Fault, StoreError};

/// What happened to an order, for the data platform.
pub(super) struct OrderEvent<'a> {
    pub order_id: i64,
    pub user_id: i64,
    pub paid_at: DateTime<Utc>,
    /// `Some` for a cancellation.
    pub cancelled_at: Option<DateTime<Utc>>,
    pub lines: &'a [OrderLineRow],
    /// The request's `traceparent`: the event belongs to the request's trace.
    pub traceparent: Option<String>,
}

impl OrderEvent<'_> {
    fn topic(&self) -> &'static str {
        match self.cancelled_at {
            None => ORDER_PAID,
            Some(_) => ORDER_CANCELLED,
        }
    }

    fn stored(&self) -> Result<NewEvent, StoreError> {
        let items = self
            .lines
            .iter()
            .map(|l| SoldItem {
                product_id: l.product_id,
                quantity: l.quantity,
                amount: l.amount,
            })
            .collect();
        let payload = match self.cancelled_at {
            None => serde_json::to_string(&OrderPaid {
                order_id: self.order_id,
                user_id: self.user_id,
                paid_at: self.paid_at,
                items,
            }),
            Some(cancelled_at) => serde_json::to_string(&OrderCancelled {
                order_id: self.order_id,
                user_id: self.user_id,
                paid_at: self.paid_at,
                cancelled_at,
                items,
            }),
        }
        .map_err(StoreError::corrupt)?;
        let at = self.cancelled_at.unwrap_or(self.paid_at);
        Ok((payload, at, self.traceparent.clone()))
    }
}

/// Writes `events` (all of one topic) to the outbox in the caller's transaction.
pub(super) async fn record(
    conn: &mut dyn Conn,
    events: &[OrderEvent<'_>],
) -> Result<(), StoreError> {
    let Some(first) = events.first() else {
        return Ok(());
    };
    let topic = first.topic();
    if events.iter().any(|e| e.topic() != topic) {
        return Err(StoreError::new(
            Fault::Bug,
            "order events of two topics in one write",
        ));
    }
    let stored = events
        .iter()
        .map(OrderEvent::stored)
        .collect::<Result<Vec<_>, _>>()?;
    conn.insert_events(topic, &stored).await
}
