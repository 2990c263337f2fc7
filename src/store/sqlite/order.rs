use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use std::collections::HashMap;

use super::product::json_ids;
use super::{instant, micros};
use crate::events::SoldItem;
use crate::ids::{OrderId, UserCouponId, UserId};
use crate::page::PageRequest;
use crate::store::order::{NewOrderRow, OrderLineRow, OrderRow, OrderStatus, OrderStore};
use crate::store::StoreError;

#[derive(sqlx::FromRow)]
struct Order {
    id: i64,
    user_id: i64,
    status: OrderStatus,
    total_amount: i64,
    discount_amount: i64,
    paid_amount: i64,
    user_coupon_id: Option<i64>,
    created_at: i64,
    cancelled_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Line {
    order_id: i64,
    product_id: i64,
    name: String,
    unit_price: i64,
    quantity: i64,
    amount: i64,
}

#[derive(sqlx::FromRow)]
struct Sales {
    product_id: i64,
    quantity: i64,
    amount: i64,
}

/// Orders with their lines, in the order given.
async fn with_lines(
    conn: &mut SqliteConnection,
    orders: Vec<Order>,
) -> Result<Vec<OrderRow>, StoreError> {
    let lines: Vec<Line> = sqlx::query_as(
        "SELECT order_id, product_id, name, unit_price, quantity, amount FROM order_items
         WHERE order_id IN (SELECT value FROM json_each($1)) ORDER BY order_id, product_id",
    )
    .bind(json_ids(orders.iter().map(|o| o.id)))
    .fetch_all(conn)
    .await?;
    let mut by_order: HashMap<i64, Vec<OrderLineRow>> = HashMap::new();
    for line in lines {
        by_order
            .entry(line.order_id)
            .or_default()
            .push(OrderLineRow {
                product_id: line.product_id,
                name: line.name,
                unit_price: line.unit_price,
                quantity: line.quantity,
                amount: line.amount,
            });
    }
    orders
        .into_iter()
        .map(|order| {
            Ok(OrderRow {
                id: OrderId::new(order.id).ok_or_else(|| StoreError::corrupt(order.id))?,
                user_id: order.user_id,
                status: order.status,
                total_amount: order.total_amount,
                discount_amount: order.discount_amount,
                paid_amount: order.paid_amount,
                user_coupon_id: order.user_coupon_id,
                created_at: instant(order.created_at)?,
                cancelled_at: order.cancelled_at.map(instant).transpose()?,
                items: by_order.remove(&order.id).unwrap_or_default(),
            })
        })
        .collect()
}

#[async_trait]
impl OrderStore for SqliteConnection {
    async fn insert_order(&mut self, order: &NewOrderRow<'_>) -> Result<OrderId, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO orders
                 (user_id, status, total_amount, discount_amount, paid_amount, user_coupon_id, created_at)
             VALUES ($1, 'PAID', $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(order.user.get())
        .bind(order.total_amount)
        .bind(order.discount_amount)
        .bind(order.paid_amount)
        .bind(order.user_coupon_id.map(UserCouponId::get))
        .bind(micros(order.created_at))
        .fetch_one(&mut *self)
        .await?;
        // In-process: one prepared statement per line costs no round trip.
        for line in order.items {
            sqlx::query(
                "INSERT INTO order_items (order_id, product_id, name, unit_price, quantity, amount)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(line.product_id)
            .bind(&line.name)
            .bind(line.unit_price)
            .bind(line.quantity)
            .bind(line.amount)
            .execute(&mut *self)
            .await?;
        }
        OrderId::new(id).ok_or_else(|| StoreError::corrupt(id))
    }

    async fn cancel_order(&mut self, id: OrderId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let cancelled = sqlx::query(
            "UPDATE orders SET status = $2, cancelled_at = $3 WHERE id = $1 AND status = $4",
        )
        .bind(id.get())
        .bind(OrderStatus::Cancelled)
        .bind(micros(now))
        .bind(OrderStatus::Paid)
        .execute(&mut *self)
        .await?;
        Ok(cancelled.rows_affected() == 1)
    }

    async fn order(&mut self, id: OrderId) -> Result<Option<OrderRow>, StoreError> {
        let orders: Vec<Order> = sqlx::query_as(
            "SELECT id, user_id, status, total_amount, discount_amount, paid_amount,
                 user_coupon_id, created_at, cancelled_at FROM orders WHERE id = $1",
        )
        .bind(id.get())
        .fetch_all(&mut *self)
        .await?;
        Ok(with_lines(self, orders).await?.pop())
    }

    async fn orders_of(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<OrderRow>, StoreError> {
        let orders: Vec<Order> = sqlx::query_as(
            "SELECT id, user_id, status, total_amount, discount_amount, paid_amount,
                 user_coupon_id, created_at, cancelled_at FROM orders WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(user.get())
        .bind(page.after.unwrap_or(i64::MAX))
        .bind(page.fetch_limit())
        .fetch_all(&mut *self)
        .await?;
        with_lines(self, orders).await
    }

    async fn sales_between(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SoldItem>, StoreError> {
        let sales: Vec<Sales> = sqlx::query_as(
            "SELECT i.product_id, SUM(i.quantity) AS quantity, SUM(i.amount) AS amount
             FROM order_items i JOIN orders o ON o.id = i.order_id
             WHERE o.status = 'PAID' AND o.created_at >= $1 AND o.created_at < $2
             GROUP BY i.product_id ORDER BY i.product_id",
        )
        .bind(micros(from))
        .bind(micros(to))
        .fetch_all(&mut *self)
        .await?;
        Ok(sales
            .into_iter()
            .map(|s| SoldItem {
                product_id: s.product_id,
                quantity: s.quantity,
                amount: s.amount,
            })
            .collect())
    }
}
