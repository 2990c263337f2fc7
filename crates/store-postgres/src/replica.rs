//! Reads from a PostgreSQL streaming replica, for what may trail the primary by the replica's
//! replay lag (catalogue, popular products, coupon campaigns, statistics). A replica that is
//! down or slow to hand out a connection is skipped for a while and the primary serves instead,
//! so losing it never fails a read.

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::db;
use commerce_store::StoreError;

/// How long a read waits for a replica connection before it asks the primary instead.
const ACQUIRE_WAIT: Duration = Duration::from_millis(250);

/// How long a failed replica is left alone before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(crate) struct Replica {
    pool: PgPool,
    epoch: Instant,
    /// Until when (ms since `epoch`) reads skip the replica.
    skip_until: Arc<AtomicU64>,
}

impl Replica {
    /// Connects lazily: a replica that is down at start is simply skipped until it is up.
    pub fn connect(url: &str, max_connections: u32) -> Result<Replica, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_WAIT)
            .connect_lazy(url)
            .map_err(db)?;
        Ok(Replica {
            pool,
            epoch: Instant::now(),
            skip_until: Arc::default(),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A replica connection, or `None` when the replica is skipped or does not give one in time.
    pub async fn acquire(&self) -> Option<PoolConnection<Postgres>> {
        if self.now() < self.skip_until.load(Ordering::Relaxed) {
            return None;
        }
        match tokio::time::timeout(ACQUIRE_WAIT, self.pool.acquire()).await {
            Ok(Ok(conn)) => {
                metrics::counter!("db_replica_reads_total", "served_by" => "replica").increment(1);
                Some(conn)
            }
            Ok(Err(error)) => self.skip(&error.to_string()),
            Err(_) => self.skip("no connection in time"),
        }
    }

    fn skip(&self, why: &str) -> Option<PoolConnection<Postgres>> {
        tracing::warn!(why, "read replica unavailable; reading from the primary");
        let until = self.now() + RETRY_AFTER.as_millis() as u64;
        self.skip_until.store(until, Ordering::Relaxed);
        metrics::counter!("db_replica_reads_total", "served_by" => "primary").increment(1);
        None
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
