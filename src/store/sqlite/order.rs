use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use std::collections::HashMap;

use super::product::json_ids;
use super::{instant, json_rows, micros};
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
    async fn insert_orders(
        &mut self,
        orders: &[NewOrderRow<'_>],
    ) -> Result<Vec<OrderId>, StoreError> {
        let placed = json_rows(orders.iter().map(|o| {
            (
                o.user.get(),
                o.total_amount,
                o.discount_amount,
                o.paid_amount,
                o.user_coupon_id.map(UserCouponId::get),
                micros(o.created_at),
            )
        }));
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO orders
                 (user_id, status, total_amount, discount_amount, paid_amount, user_coupon_id, created_at)
             SELECT o.value ->> 0, 'PAID', o.value ->> 1, o.value ->> 2, o.value ->> 3,
                    o.value ->> 4, o.value ->> 5
             FROM json_each($1) AS o ORDER BY o.key RETURNING id",
        )
        .bind(placed)
        .fetch_all(&mut *self)
        .await?;
        // The one writer numbers rows in insert order, so sorting the ids restores it.
        ids.sort_unstable();
        if ids.len() != orders.len() {
            return Err(StoreError::corrupt("an order of the batch was not stored"));
        }
        let lines = json_rows(ids.iter().zip(orders).flat_map(|(&id, order)| {
            order.items.iter().map(move |l| {
                (
                    id,
                    l.product_id,
                    l.name.as_str(),
                    l.unit_price,
                    l.quantity,
                    l.amount,
                )
            })
        }));
        sqlx::query(
            "INSERT INTO order_items (order_id, product_id, name, unit_price, quantity, amount)
             SELECT l.value ->> 0, l.value ->> 1, l.value ->> 2, l.value ->> 3, l.value ->> 4,
                    l.value ->> 5
             FROM json_each($1) AS l ORDER BY l.key",
        )
        .bind(lines)
        .execute(&mut *self)
        .await?;
        ids.into_iter()
            .map(|id| OrderId::new(id).ok_or_else(|| StoreError::corrupt(id)))
            .collect()
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
