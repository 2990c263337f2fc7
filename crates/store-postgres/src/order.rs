use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use crate::error::db;
use crate::PgConn;
use commerce_domain::events::SoldItem;
use commerce_domain::ids::{OrderId, UserCouponId, UserId};
use commerce_domain::page::PageRequest;
use commerce_store::order::{NewOrderRow, OrderLineRow, OrderRow, OrderStatus, OrderStore};
use commerce_store::StoreError;

#[derive(sqlx::FromRow)]
struct Order {
    id: i64,
    user_id: i64,
    status: OrderStatus,
    total_amount: i64,
    discount_amount: i64,
    paid_amount: i64,
    user_coupon_id: Option<i64>,
    created_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
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

/// Orders with their lines (one query for all of them), in the order given.
async fn with_lines(
    conn: &mut sqlx::PgConnection,
    orders: Vec<Order>,
) -> Result<Vec<OrderRow>, StoreError> {
    let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    let lines: Vec<Line> = sqlx::query_as(
        "SELECT order_id, product_id, name, unit_price, quantity, amount FROM order_items
         WHERE order_id = ANY($1) ORDER BY order_id, product_id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
    .map_err(db)?;
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
                created_at: order.created_at,
                cancelled_at: order.cancelled_at,
                items: by_order.remove(&order.id).unwrap_or_default(),
            })
        })
        .collect()
}

#[async_trait]
impl OrderStore for PgConn {
    /// One round trip for all: ids drawn from the sequence in arrival order (so order ids grow
    /// as orders came), the orders and their lines as arrays, each line naming its order by
    /// place.
    async fn insert_orders(
        &mut self,
        orders: &[NewOrderRow<'_>],
    ) -> Result<Vec<OrderId>, StoreError> {
        let column = |f: fn(&NewOrderRow) -> i64| orders.iter().map(f).collect::<Vec<_>>();
        let lines: Vec<(i64, &OrderLineRow)> = (1..)
            .zip(orders)
            .flat_map(|(place, order)| order.items.iter().map(move |line| (place, line)))
            .collect();
        let line =
            |f: fn(&OrderLineRow) -> i64| lines.iter().map(|(_, l)| f(l)).collect::<Vec<_>>();
        let ids: Vec<i64> = sqlx::query_scalar(
            "WITH ids AS MATERIALIZED (
                 SELECT n, nextval(pg_get_serial_sequence('orders', 'id')) AS id
                 FROM generate_series(1, cardinality($1::bigint[])) AS n),
             placed AS (
                 INSERT INTO orders (id, user_id, status, total_amount, discount_amount,
                                     paid_amount, user_coupon_id, created_at)
                 SELECT ids.id, u, 'PAID', t, d, p, c, at
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
                             $5::bigint[], $6::timestamptz[])
                     WITH ORDINALITY AS o(u, t, d, p, c, at, n)
                     JOIN ids USING (n)),
             lined AS (
                 INSERT INTO order_items
                     (order_id, product_id, name, unit_price, quantity, amount)
                 SELECT ids.id, pr, nm, up, q, a
                 FROM UNNEST($7::bigint[], $8::bigint[], $9::text[], $10::bigint[],
                             $11::bigint[], $12::bigint[]) AS l(n, pr, nm, up, q, a)
                     JOIN ids USING (n))
             SELECT id FROM ids ORDER BY n",
        )
        .bind(column(|o| o.user.get()))
        .bind(column(|o| o.total_amount))
        .bind(column(|o| o.discount_amount))
        .bind(column(|o| o.paid_amount))
        .bind(
            orders
                .iter()
                .map(|o| o.user_coupon_id.map(UserCouponId::get))
                .collect::<Vec<_>>(),
        )
        .bind(orders.iter().map(|o| o.created_at).collect::<Vec<_>>())
        .bind(lines.iter().map(|(place, _)| *place).collect::<Vec<_>>())
        .bind(line(|l| l.product_id))
        .bind(
            lines
                .iter()
                .map(|(_, l)| l.name.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(line(|l| l.unit_price))
        .bind(line(|l| l.quantity))
        .bind(line(|l| l.amount))
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        if ids.len() != orders.len() {
            return Err(StoreError::corrupt("an order of the batch got no id"));
        }
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
        .bind(now)
        .bind(OrderStatus::Paid)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(cancelled.rows_affected() == 1)
    }

    async fn order(&mut self, id: OrderId) -> Result<Option<OrderRow>, StoreError> {
        let orders: Vec<Order> = sqlx::query_as(
            "SELECT id, user_id, status, total_amount, discount_amount, paid_amount,
                 user_coupon_id, created_at, cancelled_at FROM orders WHERE id = $1",
        )
        .bind(id.get())
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        Ok(with_lines(&mut self.0, orders).await?.pop())
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
        .fetch_all(&mut self.0)
        .await.map_err(db)?;
        with_lines(&mut self.0, orders).await
    }

    async fn sales_between(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SoldItem>, StoreError> {
        let sales: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT i.product_id, SUM(i.quantity)::bigint, SUM(i.amount)::bigint
             FROM order_items i JOIN orders o ON o.id = i.order_id
             WHERE o.status = 'PAID' AND o.created_at >= $1 AND o.created_at < $2
             GROUP BY i.product_id ORDER BY i.product_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        Ok(sales
            .into_iter()
            .map(|(product_id, quantity, amount)| SoldItem {
                product_id,
                quantity,
                amount,
            })
            .collect())
    }
}
