use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::params;
use std::collections::HashSet;

use crate::{micros, SqliteConn};
use commerce_domain::events::SoldItem;
use commerce_store::platform::PlatformStore;
use commerce_store::StoreError;

/// Sales per day and product over `[?1, ?2]`: the job's figures for finalized days, the live
/// figures for the others.
macro_rules! sales_in_range {
    () => {
        "SELECT day, product_id, quantity, amount FROM platform_daily_sales
         WHERE day >= ?1 AND day <= ?2
         UNION ALL
         SELECT l.day, l.product_id, l.quantity, l.amount FROM platform_sales_live l
         WHERE l.day >= ?1 AND l.day <= ?2
           AND NOT EXISTS (SELECT 1 FROM platform_daily_runs r WHERE r.day = l.day)"
    };
}

fn sold(r: &rusqlite::Row<'_>) -> rusqlite::Result<SoldItem> {
    Ok(SoldItem {
        product_id: r.get(0)?,
        quantity: r.get(1)?,
        amount: r.get(2)?,
    })
}

#[async_trait]
impl PlatformStore for SqliteConn {
    async fn mark_processed(
        &mut self,
        event_ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut fresh = Vec::with_capacity(event_ids.len());
        for &id in event_ids {
            let inserted = self.run(
                "INSERT INTO platform_processed_events (event_id, processed_at) VALUES (?1, ?2)
                 ON CONFLICT (event_id) DO NOTHING",
                [id, micros(now)],
            )?;
            if inserted == 1 {
                fresh.push(id);
            }
        }
        Ok(fresh)
    }

    async fn prune_processed(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = self.run(
            "DELETE FROM platform_processed_events WHERE processed_at < ?1",
            [micros(cutoff)],
        )?;
        Ok(deleted as u64)
    }

    async fn add_live_sales(
        &mut self,
        day: NaiveDate,
        items: &[SoldItem],
    ) -> Result<(), StoreError> {
        for item in items {
            self.run(
                "INSERT INTO platform_sales_live (day, product_id, quantity, amount)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (day, product_id) DO UPDATE SET
                     quantity = platform_sales_live.quantity + excluded.quantity,
                     amount = platform_sales_live.amount + excluded.amount",
                params![day, item.product_id, item.quantity, item.amount],
            )?;
        }
        Ok(())
    }

    async fn top_products(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        self.all(
            concat!(
                "SELECT product_id, SUM(quantity) AS sold FROM (",
                sales_in_range!(),
                ") s GROUP BY product_id HAVING SUM(quantity) > 0
                 ORDER BY sold DESC, product_id ASC LIMIT ?3"
            ),
            params![from, to, limit],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    async fn day_sales(&mut self, day: NaiveDate) -> Result<(bool, Vec<SoldItem>), StoreError> {
        let finalized: Option<NaiveDate> = self.optional(
            "SELECT day FROM platform_daily_runs WHERE day = ?1",
            [day],
            |r| r.get(0),
        )?;
        let sales = self.all(
            concat!(
                "SELECT product_id, quantity, amount FROM (",
                sales_in_range!(),
                ") s WHERE quantity > 0 ORDER BY product_id"
            ),
            [day, day],
            sold,
        )?;
        Ok((finalized.is_some(), sales))
    }

    async fn lock_day(&mut self, _day: NaiveDate) -> Result<(), StoreError> {
        Ok(())
    }

    async fn claim_day(&mut self, day: NaiveDate, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.run(
            "INSERT INTO platform_daily_runs (day, products, quantity, amount, computed_at)
             VALUES (?1, 0, 0, 0, ?2)
             ON CONFLICT (day) DO UPDATE SET computed_at = excluded.computed_at",
            params![day, micros(now)],
        )?;
        Ok(())
    }

    async fn replace_day(&mut self, day: NaiveDate, items: &[SoldItem]) -> Result<(), StoreError> {
        self.run("DELETE FROM platform_daily_sales WHERE day = ?1", [day])?;
        for item in items {
            self.run(
                "INSERT INTO platform_daily_sales (day, product_id, quantity, amount)
                 VALUES (?1, ?2, ?3, ?4)",
                params![day, item.product_id, item.quantity, item.amount],
            )?;
        }
        self.run(
            "UPDATE platform_daily_runs SET products = ?2, quantity = ?3, amount = ?4
             WHERE day = ?1",
            params![
                day,
                items.len() as i64,
                items.iter().map(|i| i.quantity).sum::<i64>(),
                items.iter().map(|i| i.amount).sum::<i64>()
            ],
        )?;
        Ok(())
    }

    async fn finalized_between(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<HashSet<NaiveDate>, StoreError> {
        let days: Vec<NaiveDate> = self.all(
            "SELECT day FROM platform_daily_runs WHERE day >= ?1 AND day <= ?2",
            [from, to],
            |r| r.get(0),
        )?;
        Ok(days.into_iter().collect())
    }
}
