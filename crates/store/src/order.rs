//! Orders and their lines: what the order service needs from a database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::StoreError;
use commerce_domain::events::SoldItem;
use commerce_domain::ids::{OrderId, UserCouponId, UserId};
use commerce_domain::page::PageRequest;

/// Where an order stands; stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "UPPERCASE"))]
pub enum OrderStatus {
    Paid,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLineRow {
    pub product_id: i64,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub id: OrderId,
    pub user_id: i64,
    pub status: OrderStatus,
    pub total_amount: i64,
    pub discount_amount: i64,
    pub paid_amount: i64,
    pub user_coupon_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// In product order.
    pub items: Vec<OrderLineRow>,
}

#[derive(Debug, Clone)]
pub struct NewOrderRow<'a> {
    pub user: UserId,
    pub total_amount: i64,
    pub discount_amount: i64,
    pub paid_amount: i64,
    pub user_coupon_id: Option<UserCouponId>,
    pub created_at: DateTime<Utc>,
    pub items: &'a [OrderLineRow],
}

#[async_trait]
pub trait OrderStore {
    /// Stores paid orders with their lines; returns their ids in the order given.
    async fn insert_orders(
        &mut self,
        orders: &[NewOrderRow<'_>],
    ) -> Result<Vec<OrderId>, StoreError>;

    /// Marks a paid order cancelled; false when it is not (or no longer) paid. On PostgreSQL
    /// the row lock it takes makes concurrent cancels of one order wait, then find it cancelled.
    async fn cancel_order(&mut self, id: OrderId, now: DateTime<Utc>) -> Result<bool, StoreError>;

    async fn order(&mut self, id: OrderId) -> Result<Option<OrderRow>, StoreError>;

    /// The user's orders, newest first, older than the page's cursor.
    async fn orders_of(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<OrderRow>, StoreError>;

    /// Per-product quantity and gross amount of the paid orders created in `[from, to)`, by
    /// product id.
    async fn sales_between(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SoldItem>, StoreError>;
}
