use chrono::{Days, NaiveDate};
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

use super::errors::PlatformError;
use crate::ids::ProductId;
use crate::product::{self, Product};
use crate::store::Db;

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
    /// Held while the answer is recomputed, so that when it expires under a rush one request
    /// queries the statistics and the others wait for its answer instead of all querying.
    refreshing: tokio::sync::Mutex<()>,
}

impl Platform {
    pub fn new(popular_cache_ttl: Duration) -> Self {
        // Shown as 0 before the first event, so the rates can be graphed from the start.
        for counter in [
            "platform_events_applied_total",
            "platform_events_duplicate_total",
            "platform_events_rejected_total",
        ] {
            metrics::counter!(counter).increment(0);
        }
        Platform {
            ttl: popular_cache_ttl,
            popular: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The cached answer for `today`, or the one `load` computes: one load at a time.
    async fn get_or_load<E>(
        &self,
        today: NaiveDate,
        load: impl Future<Output = Result<Popular, E>>,
    ) -> Result<Arc<Popular>, E> {
        if let Some(answer) = self.cached(today) {
            return Ok(answer);
        }
        let _refreshing = self.refreshing.lock().await;
        // The request that held the lock before this one has probably just refreshed it.
        if let Some(answer) = self.cached(today) {
            return Ok(answer);
        }
        let answer = Arc::new(load.await?);
        self.keep(today, answer.clone());
        Ok(answer)
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
pub async fn popular(
    db: &Db,
    cache: &Platform,
    today: NaiveDate,
) -> Result<Arc<Popular>, PlatformError> {
    cache.get_or_load(today, top_products(db, today)).await
}

async fn top_products(db: &Db, today: NaiveDate) -> Result<Popular, PlatformError> {
    let from = today
        .checked_sub_days(Days::new(WINDOW_DAYS - 1))
        .expect("a date three days earlier exists");
    let top = db
        .read_lagging()
        .await?
        .top_products(from, today, TOP)
        .await?;
    let ids: Vec<ProductId> = top
        .iter()
        .filter_map(|(id, _)| ProductId::new(*id))
        .collect();
    let mut details: HashMap<ProductId, Product> = product::find_many(db, &ids)
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
    Ok(Popular {
        from,
        to: today,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn an_expired_answer_is_recomputed_once_for_a_crowd() {
        let platform = Arc::new(Platform::new(Duration::from_secs(60)));
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let loads = Arc::new(AtomicUsize::new(0));
        let crowd: Vec<_> = (0..100)
            .map(|_| {
                let (platform, loads) = (platform.clone(), loads.clone());
                tokio::spawn(async move {
                    let load = async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(Popular {
                            from: today,
                            to: today,
                            items: Vec::new(),
                        })
                    };
                    platform.get_or_load(today, load).await.unwrap()
                })
            })
            .collect();
        for answer in futures::future::join_all(crowd).await {
            assert_eq!(answer.unwrap().to, today);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }
}
