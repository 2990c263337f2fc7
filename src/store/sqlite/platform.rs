use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::SqliteConnection;
use std::collections::HashSet;

use super::micros;
use crate::events::SoldItem;
use crate::store::platform::PlatformStore;
use crate::store::StoreError;

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

#[derive(sqlx::FromRow)]
struct Sales {
    product_id: i64,
    quantity: i64,
    amount: i64,
}

impl From<Sales> for SoldItem {
    fn from(s: Sales) -> Self {
        SoldItem {
            product_id: s.product_id,
            quantity: s.quantity,
            amount: s.amount,
        }
    }
}

#[async_trait]
impl PlatformStore for SqliteConnection {
    async fn mark_processed(
        &mut self,
        event_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO platform_processed_events (event_id, processed_at) VALUES ($1, $2)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(micros(now))
        .execute(&mut *self)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn prune_processed(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM platform_processed_events WHERE processed_at < $1")
            .bind(micros(cutoff))
            .execute(&mut *self)
            .await?;
        Ok(deleted.rows_affected())
    }

    async fn add_live_sales(
        &mut self,
        day: NaiveDate,
        items: &[SoldItem],
    ) -> Result<(), StoreError> {
        for item in items {
            sqlx::query(
                "INSERT INTO platform_sales_live (day, product_id, quantity, amount)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (day, product_id) DO UPDATE SET
                     quantity = platform_sales_live.quantity + excluded.quantity,
                     amount = platform_sales_live.amount + excluded.amount",
            )
            .bind(day)
            .bind(item.product_id)
            .bind(item.quantity)
            .bind(item.amount)
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }

    async fn top_products(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT product_id, SUM(quantity) AS sold FROM (",
            sales_in_range!(),
            ") s GROUP BY product_id HAVING SUM(quantity) > 0
             ORDER BY sold DESC, product_id ASC LIMIT $3"
        ))
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&mut *self)
        .await?)
    }

    async fn day_sales(&mut self, day: NaiveDate) -> Result<(bool, Vec<SoldItem>), StoreError> {
        let finalized: Option<NaiveDate> =
            sqlx::query_scalar("SELECT day FROM platform_daily_runs WHERE day = $1")
                .bind(day)
                .fetch_optional(&mut *self)
                .await?;
        let sales: Vec<Sales> = sqlx::query_as(concat!(
            "SELECT product_id, quantity, amount FROM (",
            sales_in_range!(),
            ") s WHERE quantity > 0 ORDER BY product_id"
        ))
        .bind(day)
        .bind(day)
        .fetch_all(&mut *self)
        .await?;
        Ok((
            finalized.is_some(),
            sales.into_iter().map(SoldItem::from).collect(),
        ))
    }

    async fn lock_day(&mut self, _day: NaiveDate) -> Result<(), StoreError> {
        Ok(())
    }

    async fn claim_day(&mut self, day: NaiveDate, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO platform_daily_runs (day, products, quantity, amount, computed_at)
             VALUES ($1, 0, 0, 0, $2)
             ON CONFLICT (day) DO UPDATE SET computed_at = excluded.computed_at",
        )
        .bind(day)
        .bind(micros(now))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn replace_day(&mut self, day: NaiveDate, items: &[SoldItem]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM platform_daily_sales WHERE day = $1")
            .bind(day)
            .execute(&mut *self)
            .await?;
        for item in items {
            sqlx::query(
                "INSERT INTO platform_daily_sales (day, product_id, quantity, amount)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(day)
            .bind(item.product_id)
            .bind(item.quantity)
            .bind(item.amount)
            .execute(&mut *self)
            .await?;
        }
        sqlx::query(
            "UPDATE platform_daily_runs SET products = $2, quantity = $3, amount = $4
             WHERE day = $1",
        )
        .bind(day)
        .bind(items.len() as i64)
        .bind(items.iter().map(|i| i.quantity).sum::<i64>())
        .bind(items.iter().map(|i| i.amount).sum::<i64>())
        .execute(&mut *self)
        .await?;
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
                .fetch_all(&mut *self)
                .await?;
        Ok(days.into_iter().collect())
    }
}
