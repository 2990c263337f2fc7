//! The daily job (인기 상품 통계 데이터 저장 스케줄러): shortly after midnight in the shop's time
//! zone, the order module aggregates the previous day's sales per product and the platform
//! stores them as that day's authoritative figures.

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::HashSet;
use utoipa::ToSchema;

use super::errors::PlatformError;
use super::state::PlatformState;
use crate::audit::{self, Action, Entry};
use crate::clock::{day_bounds, shop_day};
use crate::events::SoldItem;
use crate::ids::UserId;
use crate::order;
use crate::store::{Conn, StoreError};

/// Days missed while the service was down are caught up this far back.
const CATCH_UP_DAYS: u64 = 31;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DaySummary {
    #[schema(value_type = String, format = Date, example = "2026-11-23")]
    pub date: NaiveDate,
    /// Products with sales that day.
    pub products: i64,
    /// Units sold.
    pub quantity: i64,
    /// Won, before coupon discounts.
    pub amount: i64,
}

/// Recomputes `day` from the stored orders and stores it as the day's authoritative figures.
/// Running it again gives the same figures; concurrent runs for one day wait for each other.
pub async fn run_day(state: &PlatformState, day: NaiveDate) -> Result<DaySummary, PlatformError> {
    run_day_by(state, day, None).await
}

/// `run_day`, recorded in the audit log as `actor`'s run when an admin asked for it.
async fn run_day_by(
    state: &PlatformState,
    day: NaiveDate,
    actor: Option<UserId>,
) -> Result<DaySummary, PlatformError> {
    let summary = store_day(state, day, actor).await?;
    tracing::info!(%day, products = summary.products, quantity = summary.quantity, "daily sales stored");
    Ok(summary)
}

/// `run_day` without its log line, for runs that log a summary of many days.
async fn store_day(
    state: &PlatformState,
    day: NaiveDate,
    actor: Option<UserId>,
) -> Result<DaySummary, PlatformError> {
    let (tz, now) = (state.time_zone, state.clock.now());
    let summary = state
        .db
        .write(move |conn| {
            Box::pin(async move {
                let summary = aggregate(conn, day, tz, now).await?;
                if let Some(actor) = actor {
                    let entry = Entry {
                        actor,
                        action: Action::JobDailySales,
                        resource: format!("daily_sales:{day}"),
                        before: None,
                        after: Some(audit::value(&summary)),
                        at: now,
                    };
                    audit::record(conn, &entry).await?;
                }
                Ok::<_, PlatformError>(summary)
            })
        })
        .await?;
    metrics::counter!("daily_sales_runs_total").increment(1);
    Ok(summary)
}

/// The job's work for one day, in the caller's transaction: the day's paid orders become its
/// authoritative figures. Also how a late cancellation corrects a day already finalized.
pub(super) async fn aggregate(
    conn: &mut dyn Conn,
    day: NaiveDate,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<DaySummary, StoreError> {
    let (start, end) = day_bounds(day, tz);
    conn.lock_day(day).await?;
    conn.claim_day(day, now).await?;
    let items = order::sales_between(conn, start, end).await?;
    conn.replace_day(day, &items).await?;
    Ok(DaySummary {
        date: day,
        products: items.len() as i64,
        quantity: items.iter().map(|i| i.quantity).sum(),
        amount: items.iter().map(|i| i.amount).sum(),
    })
}

/// `run_day` for a day that is over in the shop's time zone (the admin endpoint).
pub async fn run_finished_day(
    state: &PlatformState,
    actor: UserId,
    day: NaiveDate,
) -> Result<DaySummary, PlatformError> {
    let today = shop_day(state.clock.now(), state.time_zone);
    if day >= today {
        return Err(PlatformError::Invalid(format!(
            "{day} is not over yet in the shop's time zone (today is {today})"
        )));
    }
    run_day_by(state, day, Some(actor)).await
}

/// Runs every due day not yet finalized within the catch-up window: yesterday once the job
/// time has passed today, and any day missed while the service was down.
pub async fn catch_up(state: &PlatformState) -> Result<Vec<DaySummary>, PlatformError> {
    let local = state.clock.now().with_timezone(&state.time_zone);
    let yesterday = local
        .date_naive()
        .checked_sub_days(Days::new(1))
        .expect("yesterday exists");
    let last_due = if local.time() >= state.daily_job_at {
        yesterday
    } else {
        yesterday
            .checked_sub_days(Days::new(1))
            .expect("the day before exists")
    };
    let first = last_due
        .checked_sub_days(Days::new(CATCH_UP_DAYS - 1))
        .expect("a month earlier exists");
    let done: HashSet<NaiveDate> = state
        .db
        .read()
        .await?
        .finalized_between(first, last_due)
        .await?;
    let mut ran = Vec::new();
    for day in first.iter_days().take_while(|d| *d <= last_due) {
        if !done.contains(&day) {
            ran.push(store_day(state, day, None).await?);
        }
    }
    // One line however many days were caught up (a fresh database has a month of empty days).
    if let (Some(earliest), Some(latest)) = (ran.first(), ran.last()) {
        tracing::info!(
            days = ran.len(),
            from = %earliest.date,
            to = %latest.date,
            days_with_sales = ran.iter().filter(|d| d.products > 0).count(),
            quantity = ran.iter().map(|d| d.quantity).sum::<i64>(),
            "daily sales stored"
        );
    }
    // Every due day is stored now: an alert fires when this grows old (the job is not running
    // or keeps failing).
    metrics::gauge!("daily_sales_last_success_timestamp_seconds")
        .set(state.clock.now().timestamp() as f64);
    Ok(ran)
}

/// A day's figures as the admin API shows them.
pub async fn figures(
    state: &PlatformState,
    day: NaiveDate,
) -> Result<(bool, Vec<SoldItem>), PlatformError> {
    Ok(state.db.read_lagging().await?.day_sales(day).await?)
}
