use sqlx::{AnyConnection, Row};
use std::collections::HashSet;

use super::event::SoldItem;
use crate::db::DbError;

/// Records the event id; false when it was already processed.
pub(super) async fn mark_processed(
    conn: &mut AnyConnection,
    event_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let inserted = sqlx::query(
        "INSERT INTO platform_processed_events (event_id, processed_at) VALUES ($1, $2)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub(super) async fn add_live_sales(
    conn: &mut AnyConnection,
    day: &str,
    items: &[SoldItem],
) -> Result<(), DbError> {
    for item in items {
        sqlx::query(
            "INSERT INTO platform_sales_live (day, product_id, quantity, amount) VALUES ($1, $2, $3, $4)
             ON CONFLICT (day, product_id) DO UPDATE SET
                 quantity = platform_sales_live.quantity + excluded.quantity,
                 amount = platform_sales_live.amount + excluded.amount",
        )
        .bind(day)
        .bind(item.product_id)
        .bind(item.quantity)
        .bind(item.amount)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Sales per day and product over `[from, to]`: the job's figures for finalized days, the
/// live figures for the others.
const SALES_IN_RANGE: &str = "
    SELECT day, product_id, quantity, amount FROM platform_daily_sales WHERE day >= $1 AND day <= $2
    UNION ALL
    SELECT l.day, l.product_id, l.quantity, l.amount FROM platform_sales_live l
    WHERE l.day >= $1 AND l.day <= $2
      AND NOT EXISTS (SELECT 1 FROM platform_daily_runs r WHERE r.day = l.day)";

/// The top `limit` products by quantity over `[from, to]`, ties by lower product id.
pub(super) async fn top_products(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
    limit: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT product_id, CAST(SUM(quantity) AS BIGINT) AS sold FROM ({SALES_IN_RANGE}) s
         GROUP BY product_id ORDER BY sold DESC, product_id ASC LIMIT $3"
    ))
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// One day's figures, by product id, and whether the daily job has finalized them.
pub(super) async fn day_sales(
    conn: &mut AnyConnection,
    day: &str,
) -> Result<(bool, Vec<SoldItem>), DbError> {
    let finalized: Option<String> =
        sqlx::query_scalar("SELECT day FROM platform_daily_runs WHERE day = $1")
            .bind(day)
            .fetch_optional(&mut *conn)
            .await?;
    let rows = sqlx::query(&format!(
        "SELECT product_id, quantity, amount FROM ({SALES_IN_RANGE}) s ORDER BY product_id"
    ))
    .bind(day)
    .bind(day)
    .fetch_all(conn)
    .await?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(SoldItem {
                product_id: row.try_get(0)?,
                quantity: row.try_get(1)?,
                amount: row.try_get(2)?,
            })
        })
        .collect::<Result<_, DbError>>()?;
    Ok((finalized.is_some(), items))
}

/// Claims the day's run row first: on PostgreSQL its row lock makes concurrent runs of the
/// job for one day wait for each other, so they write one result.
pub(super) async fn claim_day(
    conn: &mut AnyConnection,
    day: &str,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO platform_daily_runs (day, products, quantity, amount, computed_at)
         VALUES ($1, 0, 0, 0, $2)
         ON CONFLICT (day) DO UPDATE SET computed_at = excluded.computed_at",
    )
    .bind(day)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the day's authoritative figures and its totals.
pub(super) async fn replace_day(
    conn: &mut AnyConnection,
    day: &str,
    items: &[SoldItem],
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM platform_daily_sales WHERE day = $1")
        .bind(day)
        .execute(&mut *conn)
        .await?;
    for item in items {
        sqlx::query(
            "INSERT INTO platform_daily_sales (day, product_id, quantity, amount) VALUES ($1, $2, $3, $4)",
        )
        .bind(day)
        .bind(item.product_id)
        .bind(item.quantity)
        .bind(item.amount)
        .execute(&mut *conn)
        .await?;
    }
    let quantity: i64 = items.iter().map(|i| i.quantity).sum();
    let amount: i64 = items.iter().map(|i| i.amount).sum();
    sqlx::query(
        "UPDATE platform_daily_runs SET products = $2, quantity = $3, amount = $4 WHERE day = $1",
    )
    .bind(day)
    .bind(items.len() as i64)
    .bind(quantity)
    .bind(amount)
    .execute(conn)
    .await?;
    Ok(())
}

/// The days in `[from, to]` the job has finalized.
pub(super) async fn finalized_between(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
) -> Result<HashSet<String>, DbError> {
    let days: Vec<String> =
        sqlx::query_scalar("SELECT day FROM platform_daily_runs WHERE day >= $1 AND day <= $2")
            .bind(from)
            .bind(to)
            .fetch_all(conn)
            .await?;
    Ok(days.into_iter().collect())
}
