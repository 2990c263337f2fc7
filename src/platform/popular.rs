use chrono::{Days, NaiveDate};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

use super::{store, PlatformError};
use crate::app::AppState;
use crate::clock::shop_day;
use crate::db::DbError;
use crate::ids::ProductId;
use crate::product::{self, Product};

/// Today and the two days before it.
const WINDOW_DAYS: u64 = 3;
const TOP: i64 = 5;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Popular {
    /// First day of the window (today - 2), shop time zone.
    #[schema(value_type = String, format = Date, example = "2026-11-22")]
    pub from: NaiveDate,
    /// Last day of the window (today).
    #[schema(value_type = String, format = Date, example = "2026-11-24")]
    pub to: NaiveDate,
    /// At most 5, by quantity sold, ties by lower product id.
    pub items: Vec<PopularItem>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PopularItem {
    pub rank: i64,
    pub product: Product,
    pub sold_quantity: i64,
}

/// The platform's in-process state: the last popular-products answer, reused for a short TTL.
pub struct Platform {
    ttl: Duration,
    popular: Mutex<Option<(NaiveDate, Instant, Arc<Popular>)>>,
}

impl Platform {
    pub fn new(popular_cache_ttl: Duration) -> Self {
        Platform {
            ttl: popular_cache_ttl,
            popular: Mutex::new(None),
        }
    }

    fn cached(&self, today: NaiveDate) -> Option<Arc<Popular>> {
        let cached = self.popular.lock().expect("popular cache lock");
        cached
            .as_ref()
            .filter(|(day, at, _)| *day == today && at.elapsed() < self.ttl)
            .map(|(_, _, answer)| answer.clone())
    }

    fn keep(&self, today: NaiveDate, answer: Arc<Popular>) {
        *self.popular.lock().expect("popular cache lock") = Some((today, Instant::now(), answer));
    }
}

/// The top products of the last three days, from the platform's statistics (인기 상품 조회):
/// the platform ranks product ids, then the product module supplies their details.
pub async fn popular(state: &AppState) -> Result<Arc<Popular>, PlatformError> {
    let today = shop_day(state.clock.now(), state.settings.time_zone);
    if let Some(answer) = state.platform.cached(today) {
        return Ok(answer);
    }
    let from = today
        .checked_sub_days(Days::new(WINDOW_DAYS - 1))
        .expect("a date three days earlier exists");
    let top = {
        let mut conn = state.db.reader().acquire().await.map_err(DbError::from)?;
        store::top_products(&mut conn, &from.to_string(), &today.to_string(), TOP).await?
    };
    let ids: Vec<ProductId> = top
        .iter()
        .filter_map(|(id, _)| ProductId::new(*id))
        .collect();
    let mut details: HashMap<ProductId, Product> = product::find_many(&state.db, &ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let items = top
        .iter()
        .filter_map(|(id, sold)| {
            details
                .remove(&ProductId::new(*id)?)
                .map(|product| (product, *sold))
        })
        .enumerate()
        .map(|(i, (product, sold_quantity))| PopularItem {
            rank: i as i64 + 1,
            product,
            sold_quantity,
        })
        .collect();
    let answer = Arc::new(Popular {
        from,
        to: today,
        items,
    });
    state.platform.keep(today, answer.clone());
    Ok(answer)
}
