//! Events the order module publishes and the data platform consumes; owned by neither.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Outbox topic (and NATS subject suffix) of paid orders.
pub const ORDER_PAID: &str = "order.paid";

/// A paid order's statistics: what was sold, when. Amounts are gross line amounts
/// (unit price × quantity, before any coupon discount), in won.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub order_id: i64,
    pub user_id: i64,
    pub paid_at: DateTime<Utc>,
    pub items: Vec<SoldItem>,
}

/// Outbox topic (and NATS subject suffix) of cancelled orders.
pub const ORDER_CANCELLED: &str = "order.cancelled";

/// A cancelled order's statistics: what was sold when it was placed, now taken back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: i64,
    pub user_id: i64,
    /// When the order was placed: its sales are taken off that day.
    pub paid_at: DateTime<Utc>,
    pub cancelled_at: DateTime<Utc>,
    pub items: Vec<SoldItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoldItem {
    pub product_id: i64,
    pub quantity: i64,
    pub amount: i64,
}
