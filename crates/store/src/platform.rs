//! Sales statistics per shop day and product: what the data platform needs from a database.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashSet;

use crate::StoreError;
use commerce_domain::events::SoldItem;

#[async_trait]
pub trait PlatformStore {
    /// Records that the events `event_ids` were applied; returns those not recorded before.
    async fn mark_processed(
        &mut self,
        event_ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;

    /// Deletes the records of events processed before `cutoff`; returns how many.
    async fn prune_processed(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Adds to the live figures of `day` (one item per product).
    async fn add_live_sales(
        &mut self,
        day: NaiveDate,
        items: &[SoldItem],
    ) -> Result<(), StoreError>;

    /// The top `limit` (product id, quantity) over `[from, to]`, ties by lower product id:
    /// the daily job's figures for finalized days, the live figures for the others. Products
    /// with nothing sold (all their sales cancelled) are left out.
    async fn top_products(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError>;

    /// One day's figures, by product id, and whether the daily job has finalized them; products
    /// with nothing sold that day are left out.
    async fn day_sales(&mut self, day: NaiveDate) -> Result<(bool, Vec<SoldItem>), StoreError>;

    /// Makes whoever recomputes or corrects `day`'s figures wait for anyone else doing so until
    /// the end of the transaction (SQLite: writers are one at a time already).
    async fn lock_day(&mut self, day: NaiveDate) -> Result<(), StoreError>;

    /// Claims the day's run row; on PostgreSQL its row lock makes concurrent runs of the job
    /// for one day wait for each other.
    async fn claim_day(&mut self, day: NaiveDate, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Replaces the day's authoritative figures and its totals.
    async fn replace_day(&mut self, day: NaiveDate, items: &[SoldItem]) -> Result<(), StoreError>;

    /// The days in `[from, to]` the job has finalized.
    async fn finalized_between(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<HashSet<NaiveDate>, StoreError>;
}
