use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;
use std::collections::HashMap;

use crate::product::json_ids;
use crate::{instant, json_rows, micros, SqliteConn};
use commerce_domain::events::SoldItem;
use commerce_domain::ids::{OrderId, UserCouponId, UserId};
use commerce_domain::page::PageRequest;
use commerce_store::order::{NewOrderRow, OrderLineRow, OrderRow, OrderStatus, OrderStore};
use commerce_store::StoreError;

/// Orders selected by `$where`, in the columns [`Order::read`] reads.
macro_rules! select_orders {
    ($where:literal) => {
        concat!(
            "SELECT id, user_id, status, total_amount, discount_amount, paid_amount, ",
            "user_coupon_id, created_at, cancelled_at FROM orders ",
            $where
        )
    };
}

/// An order as stored, before its instants are checked and its lines added.
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

impl Order {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Order> {
        Ok(Order {
            id: r.get(0)?,
            user_id: r.get(1)?,
            status: r.get(2)?,
            total_amount: r.get(3)?,
            discount_amount: r.get(4)?,
            paid_amount: r.get(5)?,
            user_coupon_id: r.get(6)?,
            created_at: r.get(7)?,
            cancelled_at: r.get(8)?,
        })
    }
}

impl SqliteConn {
    /// Orders with their lines, in the order given.
    fn with_lines(&self, orders: Vec<Order>) -> Result<Vec<OrderRow>, StoreError> {
        let lines: Vec<(i64, OrderLineRow)> = self.all(
            "SELECT order_id, product_id, name, unit_price, quantity, amount FROM order_items
             WHERE order_id IN (SELECT value FROM json_each(?1)) ORDER BY order_id, product_id",
            [json_ids(orders.iter().map(|o| o.id))],
            |r| {
                let line = OrderLineRow {
                    product_id: r.get(1)?,
                    name: r.get(2)?,
                    unit_price: r.get(3)?,
                    quantity: r.get(4)?,
                    amount: r.get(5)?,
                };
                Ok((r.get(0)?, line))
            },
        )?;
        let mut by_order: HashMap<i64, Vec<OrderLineRow>> = HashMap::new();
        for (order, line) in lines {
            by_order.entry(order).or_default().push(line);
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
}

#[async_trait]
impl OrderStore for SqliteConn {
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
        let mut ids: Vec<i64> = self.all(
            "INSERT INTO orders
                 (user_id, status, total_amount, discount_amount, paid_amount, user_coupon_id, created_at)
             SELECT o.value ->> 0, 'PAID', o.value ->> 1, o.value ->> 2, o.value ->> 3,
                    o.value ->> 4, o.value ->> 5
             FROM json_each(?1) AS o ORDER BY o.key RETURNING id",
            [placed],
            |r| r.get(0),
        )?;
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
        self.run(
            "INSERT INTO order_items (order_id, product_id, name, unit_price, quantity, amount)
             SELECT l.value ->> 0, l.value ->> 1, l.value ->> 2, l.value ->> 3, l.value ->> 4,
                    l.value ->> 5
             FROM json_each(?1) AS l ORDER BY l.key",
            [lines],
        )?;
        ids.into_iter()
            .map(|id| OrderId::new(id).ok_or_else(|| StoreError::corrupt(id)))
            .collect()
    }

    async fn cancel_order(&mut self, id: OrderId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let cancelled = self.run(
            "UPDATE orders SET status = ?2, cancelled_at = ?3 WHERE id = ?1 AND status = ?4",
            params![
                id.get(),
                OrderStatus::Cancelled,
                micros(now),
                OrderStatus::Paid
            ],
        )?;
        Ok(cancelled == 1)
    }

    async fn order(&mut self, id: OrderId) -> Result<Option<OrderRow>, StoreError> {
        let orders = self.all(select_orders!("WHERE id = ?1"), [id.get()], Order::read)?;
        Ok(self.with_lines(orders)?.pop())
    }

    async fn orders_of(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<OrderRow>, StoreError> {
        let orders = self.all(
            select_orders!("WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"),
            params![
                user.get(),
                page.after.unwrap_or(i64::MAX),
                page.fetch_limit()
            ],
            Order::read,
        )?;
        self.with_lines(orders)
    }

    async fn sales_between(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SoldItem>, StoreError> {
        self.all(
            "SELECT i.product_id, SUM(i.quantity) AS quantity, SUM(i.amount) AS amount
             FROM order_items i JOIN orders o ON o.id = i.order_id
             WHERE o.status = 'PAID' AND o.created_at >= ?1 AND o.created_at < ?2
             GROUP BY i.product_id ORDER BY i.product_id",
            [micros(from), micros(to)],
            |r| {
                Ok(SoldItem {
                    product_id: r.get(0)?,
                    quantity: r.get(1)?,
                    amount: r.get(2)?,
                })
            },
        )
    }
}
