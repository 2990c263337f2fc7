//! An order as the API shows it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::errors::OrderError;
use super::pricing::Pricing;
use crate::ids::{OrderId, UserCouponId, UserId};
use crate::store::order::{OrderLineRow, OrderRow, OrderStatus};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderLine {
    pub product_id: i64,
    /// The product's name when ordered.
    pub name: String,
    /// The product's price when ordered.
    pub unit_price: i64,
    pub quantity: i64,
    /// unit_price × quantity.
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub status: OrderStatus,
    pub items: Vec<OrderLine>,
    pub total_amount: i64,
    pub discount_amount: i64,
    /// total_amount - discount_amount, debited from the balance.
    pub paid_amount: i64,
    /// The coupon used; null for none.
    #[schema(required = true)]
    pub user_coupon_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// When the order was cancelled; null while it is paid.
    #[schema(required = true)]
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<OrderLineRow> for OrderLine {
    fn from(row: OrderLineRow) -> Self {
        OrderLine {
            product_id: row.product_id,
            name: row.name,
            unit_price: row.unit_price,
            quantity: row.quantity,
            amount: row.amount,
        }
    }
}

impl From<OrderRow> for Order {
    fn from(row: OrderRow) -> Self {
        Order {
            id: row.id.get(),
            user_id: row.user_id,
            status: row.status,
            items: row.items.into_iter().map(OrderLine::from).collect(),
            total_amount: row.total_amount,
            discount_amount: row.discount_amount,
            paid_amount: row.paid_amount,
            user_coupon_id: row.user_coupon_id,
            created_at: row.created_at,
            cancelled_at: row.cancelled_at,
        }
    }
}

pub(super) fn not_usable(id: UserCouponId, why: String) -> OrderError {
    OrderError::CouponNotUsable(id.get(), why)
}

pub(super) fn view(
    id: OrderId,
    user: UserId,
    items: Vec<OrderLine>,
    pricing: Pricing,
    coupon: Option<UserCouponId>,
    at: DateTime<Utc>,
) -> Order {
    Order {
        id: id.get(),
        user_id: user.get(),
        status: OrderStatus::Paid,
        items,
        total_amount: pricing.total.get(),
        discount_amount: pricing.discount.get(),
        paid_amount: pricing.paid.get(),
        user_coupon_id: coupon.map(UserCouponId::get),
        created_at: at,
        cancelled_at: None,
    }
}
