use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashSet;

use crate::error::db;
use crate::PgConn;
use commerce_domain::events::SoldItem;
use commerce_store::platform::PlatformStore;
use commerce_store::StoreError;

/// Sales per day and product over `[$1, $2]`: the job's figures for finalized days, the live
/// figures for the others.
macro_rules! sales_in_range {
    () => {
        "SELECT day, product_id, quantity, amount FROM platform_daily_sales
         WHERE day >= $1 AND day <= $2
         UNION ALL
         SELECT l.day, l.product_id, l.quantity, l.amount FROM platform_sales_live l
         WHERE l.day >= $1 AND l.day <= $2
           AND NOT EXISTS (SELECT 1 FROM platform_daily_runs r WHERE r.day = l.day)"
    };
}

/// The first key of the platform's day locks (the second is the day).
const DAY_LOCKS: i32 = 0x5A1E;

/// The items as three arrays, for `UNNEST`.
fn columns(items: &[SoldItem]) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    (
        items.iter().map(|i| i.product_id).collect(),
        items.iter().map(|i| i.quantity).collect(),
        items.iter().map(|i| i.amount).collect(),
    )
}

fn sold(rows: Vec<(i64, i64, i64)>) -> Vec<SoldItem> {
    rows.into_iter()
        .map(|(product_id, quantity, amount)| SoldItem {
            product_id,
            quantity,
            amount,
        })
        .collect()
}

#[async_trait]
impl PlatformStore for PgConn {
    async fn mark_processed(
        &mut self,
        event_ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO platform_processed_events (event_id, processed_at)
             SELECT id, $2 FROM UNNEST($1::bigint[]) AS id
             ON CONFLICT (event_id) DO NOTHING
             RETURNING event_id",
        )
        .bind(event_ids)
        .bind(now)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)
    }

    async fn prune_processed(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM platform_processed_events WHERE processed_at < $1")
            .bind(cutoff)
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        Ok(deleted.rows_affected())
    }

    /// One statement for all the items. An event's items are distinct products (the order
    /// merged its lines), so no row is upserted twice in one statement.
    async fn add_live_sales(
        &mut self,
        day: NaiveDate,
        items: &[SoldItem],
    ) -> Result<(), StoreError> {
        let (products, quantities, amounts) = columns(items);
        sqlx::query(
            "INSERT INTO platform_sales_live (day, product_id, quantity, amount)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[])
             ON CONFLICT (day, product_id) DO UPDATE SET
                 quantity = platform_sales_live.quantity + excluded.quantity,
                 amount = platform_sales_live.amount + excluded.amount",
        )
        .bind(day)
        .bind(products)
        .bind(quantities)
        .bind(amounts)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn top_products(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT product_id, SUM(quantity)::bigint AS sold FROM (",
            sales_in_range!(),
            ") s GROUP BY product_id HAVING SUM(quantity) > 0
             ORDER BY sold DESC, product_id ASC LIMIT $3"
        ))
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?)
    }

    async fn day_sales(&mut self, day: NaiveDate) -> Result<(bool, Vec<SoldItem>), StoreError> {
        let finalized: Option<NaiveDate> =
            sqlx::query_scalar("SELECT day FROM platform_daily_runs WHERE day = $1")
                .bind(day)
                .fetch_optional(&mut self.0)
                .await
                .map_err(db)?;
        let rows = sqlx::query_as(concat!(
            "SELECT product_id, quantity, amount FROM (",
            sales_in_range!(),
            ") s WHERE quantity > 0 ORDER BY product_id"
        ))
        .bind(day)
        .bind(day)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        Ok((finalized.is_some(), sold(rows)))
    }

    /// A transaction-scoped advisory lock keyed by the day: the daily job's claim row does not
    /// exist yet when a cancellation of that day needs to wait for the job.
    async fn lock_day(&mut self, day: NaiveDate) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2::date - DATE '2000-01-01')")
            .bind(DAY_LOCKS)
            .bind(day)
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn claim_day(&mut self, day: NaiveDate, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO platform_daily_runs (day, products, quantity, amount, computed_at)
             VALUES ($1, 0, 0, 0, $2)
             ON CONFLICT (day) DO UPDATE SET computed_at = excluded.computed_at",
        )
        .bind(day)
        .bind(now)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn replace_day(&mut self, day: NaiveDate, items: &[SoldItem]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM platform_daily_sales WHERE day = $1")
            .bind(day)
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        let (products, quantities, amounts) = columns(items);
        sqlx::query(
            "WITH totals AS (
                      UPDATE platform_daily_runs
                      SET products = cardinality($2::bigint[]),
                          quantity = (SELECT COALESCE(SUM(q), 0) FROM UNNEST($3::bigint[]) q),
                          amount = (SELECT COALESCE(SUM(a), 0) FROM UNNEST($4::bigint[]) a)
                      WHERE day = $1)
             INSERT INTO platform_daily_sales (day, product_id, quantity, amount)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[])",
        )
        .bind(day)
        .bind(products)
        .bind(quantities)
        .bind(amounts)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn finalized_between(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<HashSet<NaiveDate>, StoreError> {
        let days: Vec<NaiveDate> =
            sqlx::query_scalar("SELECT day FROM platform_daily_runs WHERE day >= $1 AND day <= $2")
                .bind(from)
                .bind(to)
                .fetch_all(&mut self.0)
                .await
                .map_err(db)?;
        Ok(days.into_iter().collect())
    }
}
