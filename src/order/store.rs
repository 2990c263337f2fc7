use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

use super::pricing::Pricing;
use super::service::{Order, OrderLine, OrderStatus};
use crate::clock::from_micros;
use crate::db::{is_postgres, DbError};
use crate::ids::{OrderId, UserCouponId, UserId};
use crate::page::PageRequest;
use crate::platform::SoldItem;

const INSERT_ORDER: &str = "INSERT INTO orders
    (user_id, status, total_amount, discount_amount, paid_amount, user_coupon_id, created_at)
    VALUES ($1, 'PAID', $2, $3, $4, $5, $6) RETURNING id";

/// Stores the order and its lines. PostgreSQL does it in one round trip.
pub(super) async fn insert(
    conn: &mut AnyConnection,
    user: UserId,
    pricing: &Pricing,
    coupon: Option<UserCouponId>,
    lines: &[OrderLine],
    now: i64,
) -> Result<OrderId, DbError> {
    let order = |sql| {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(user.get())
            .bind(pricing.total.get())
            .bind(pricing.discount.get())
            .bind(pricing.paid.get())
            .bind(coupon.map(UserCouponId::get))
            .bind(now)
    };
    let id = if is_postgres(conn) {
        let sql = format!(
            "WITH placed AS ({INSERT_ORDER}),
                  lines AS (INSERT INTO order_items (order_id, product_id, name, unit_price, quantity, amount)
                            SELECT placed.id, l.* FROM placed, (VALUES {}) AS l)
             SELECT id FROM placed",
            line_values(lines.len(), 7, false)
        );
        bind_lines(order(&sql), lines).fetch_one(conn).await?
    } else {
        let id = order(INSERT_ORDER).fetch_one(&mut *conn).await?;
        let sql = format!(
            "INSERT INTO order_items (order_id, product_id, name, unit_price, quantity, amount) VALUES {}",
            line_values(lines.len(), 2, true)
        );
        bind_lines(sqlx::query_scalar::<_, i64>(&sql).bind(id), lines)
            .fetch_optional(conn)
            .await?;
        id
    };
    OrderId::new(id).ok_or_else(|| DbError::Corrupt(format!("order id {id}")))
}

/// One `(...)` group of placeholders per line, the lines' parameters numbered from `first`;
/// `with_order_id` starts each group with `$first-1`, where the statement binds the order id.
fn line_values(count: usize, first: usize, with_order_id: bool) -> String {
    (0..count)
        .map(|i| {
            let p = first + i * 5;
            let order = if with_order_id {
                format!("${}, ", first - 1)
            } else {
                String::new()
            };
            format!(
                "({order}${}, ${}, ${}, ${}, ${})",
                p,
                p + 1,
                p + 2,
                p + 3,
                p + 4
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn bind_lines<'q, O>(
    mut query: sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    lines: &'q [OrderLine],
) -> sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
    for line in lines {
        query = query
            .bind(line.product_id)
            .bind(line.name.as_str())
            .bind(line.unit_price)
            .bind(line.quantity)
            .bind(line.amount);
    }
    query
}

const ORDER_COLUMNS: &str =
    "id, user_id, total_amount, discount_amount, paid_amount, user_coupon_id, created_at";

fn order(row: &AnyRow, items: Vec<OrderLine>) -> Result<Order, DbError> {
    Ok(Order {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        status: OrderStatus::Paid,
        items,
        total_amount: row.try_get("total_amount")?,
        discount_amount: row.try_get("discount_amount")?,
        paid_amount: row.try_get("paid_amount")?,
        user_coupon_id: row.try_get("user_coupon_id")?,
        created_at: from_micros(row.try_get("created_at")?),
    })
}

pub(super) async fn get(conn: &mut AnyConnection, id: OrderId) -> Result<Option<Order>, DbError> {
    let Some(row) = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
        .bind(id.get())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut items = lines_of(conn, &[id.get()]).await?;
    order(&row, items.remove(&id.get()).unwrap_or_default()).map(Some)
}

pub(super) async fn list_for_user(
    conn: &mut AnyConnection,
    user: UserId,
    page: PageRequest,
) -> Result<Vec<Order>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
    ))
    .bind(user.get())
    .bind(page.after.unwrap_or(i64::MAX))
    .bind(page.fetch_limit())
    .fetch_all(&mut *conn)
    .await?;
    let ids = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut items = lines_of(conn, &ids).await?;
    rows.iter()
        .zip(&ids)
        .map(|(row, id)| order(row, items.remove(id).unwrap_or_default()))
        .collect()
}

/// The lines of several orders, keyed by order id, each in product order.
async fn lines_of(
    conn: &mut AnyConnection,
    orders: &[i64],
) -> Result<HashMap<i64, Vec<OrderLine>>, DbError> {
    let mut lines: HashMap<i64, Vec<OrderLine>> = HashMap::new();
    if orders.is_empty() {
        return Ok(lines);
    }
    let placeholders: Vec<String> = (1..=orders.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT order_id, product_id, name, unit_price, quantity, amount FROM order_items
         WHERE order_id IN ({}) ORDER BY order_id, product_id",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in orders {
        query = query.bind(*id);
    }
    for row in query.fetch_all(conn).await? {
        lines
            .entry(row.try_get("order_id")?)
            .or_default()
            .push(OrderLine {
                product_id: row.try_get("product_id")?,
                name: row.try_get("name")?,
                unit_price: row.try_get("unit_price")?,
                quantity: row.try_get("quantity")?,
                amount: row.try_get("amount")?,
            });
    }
    Ok(lines)
}

pub(super) async fn sales_between(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
) -> Result<Vec<SoldItem>, DbError> {
    let rows = sqlx::query(
        "SELECT i.product_id, CAST(SUM(i.quantity) AS BIGINT) AS quantity, CAST(SUM(i.amount) AS BIGINT) AS amount
         FROM order_items i JOIN orders o ON o.id = i.order_id
         WHERE o.status = 'PAID' AND o.created_at >= $1 AND o.created_at < $2
         GROUP BY i.product_id ORDER BY i.product_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(SoldItem {
                product_id: row.try_get("product_id")?,
                quantity: row.try_get("quantity")?,
                amount: row.try_get("amount")?,
            })
        })
        .collect()
}
