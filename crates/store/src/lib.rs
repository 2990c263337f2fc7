//! The storage interface of commerce: what services may ask of a database, and how writes
//! reach it.
//!
//! Services talk to [`Conn`], one trait per capability gathered in one, and never see SQL. Each
//! backend is a crate of its own that implements it and an [`Engine`]: `commerce-store-postgres`
//! on sqlx's PostgreSQL driver (native types, arrays, `UNNEST`), `commerce-store-sqlite` on
//! rusqlite, its statements run synchronously on a writer thread of its own and on the caller's
//! thread for reads. Backend differences live in those crates, nowhere else.
//!
//! Every write, on both backends, runs through the committer: [`Db::write`] (a lone write, in a
//! savepoint) and [`Db::write_shared`] (orders, cancellations, charges, coupon issues, decided
//! together) share one transaction with the writes waiting at that moment, answered only after
//! `COMMIT` succeeded; keyed writes are claimed and remembered there (see `batch`,
//! `idempotency`). A storage error inside it discards the connection (SQLite rolls a
//! transaction back by itself on disk-full and I/O errors, so its state cannot be trusted),
//! transient errors run the batch again within [`WRITE_DEADLINE`], and the rest reach the
//! caller classified (see [`Fault`]).

pub mod audit;
pub mod balance;
mod batch;
mod committer;
pub mod coupon;
mod engine;
mod error;
pub mod idempotency;
pub mod order;
pub mod outbox;
mod parking;
pub mod platform;
pub mod product;
mod queue;
mod retry;
mod rows;
mod shared;
mod source;
#[cfg(feature = "rusqlite")]
mod sqlite_values;
mod trace;
pub mod webhook;

pub use batch::{close_savepoint, Batching, DEFAULT_COMMITTERS, DEFAULT_MAX_BATCH};
pub use committer::{Committer, QueueLoad, PROBE_WAIT};
pub use engine::{Backend, Engine, LoneWrites, PoolStats, ReadConn, Reader, Transaction};
pub use error::{Fault, StoreError, StoreFault};
pub use retry::WRITE_DEADLINE;
pub use rows::Row;
pub use shared::{Shared, SharedOutcome, WriteKind};
pub use source::Source;

use async_trait::async_trait;
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use outbox::Event;

/// Everything a service can ask of a database connection, in or out of a transaction.
#[async_trait]
pub trait Conn:
    audit::AuditStore
    + balance::BalanceStore
    + product::ProductStore
    + coupon::CouponStore
    + order::OrderStore
    + platform::PlatformStore
    + outbox::OutboxStore
    + idempotency::IdempotencyStore
    + webhook::WebhookStore
    + Send
{
    /// Opens a savepoint: what follows can be undone alone, the transaction going on.
    async fn savepoint(&mut self) -> Result<(), StoreError>;
    async fn release_savepoint(&mut self) -> Result<(), StoreError>;
    /// Undoes what followed the savepoint and closes it. Savepoints nest: each call closes the
    /// innermost one open.
    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError>;
    /// A small write that needs fresh space, so it fails while the disk is full.
    async fn probe_write(&mut self) -> Result<(), StoreError>;
    /// Which of `rows` another transaction holds locked now (without waiting for them); the
    /// caller rolls back afterwards.
    async fn held_rows(&mut self, rows: &[Row]) -> Result<Vec<Row>, StoreError>;
}

/// How long readiness waits for the database to answer.
const READY_WAIT: Duration = Duration::from_secs(1);

/// A database: its backend's engine and the committer its batched writes queue for.
#[derive(Clone, Debug)]
pub struct Db {
    engine: Arc<dyn Engine>,
    committer: Committer,
    /// Set while writes fail for lack of storage; a committed write clears it.
    writes_failing: Arc<AtomicBool>,
}

impl Db {
    /// A database on `engine`, whose committer `start` starts (it shares the flag that says
    /// writes are failing).
    pub fn new(
        engine: impl Engine,
        batching: Batching,
        start: impl FnOnce(Arc<AtomicBool>, Batching) -> Committer,
    ) -> Db {
        let writes_failing = Arc::<AtomicBool>::default();
        Db {
            engine: Arc::new(engine),
            committer: start(writes_failing.clone(), batching),
            writes_failing,
        }
    }

    pub fn backend(&self) -> Backend {
        self.engine.backend()
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.engine.migrate().await
    }

    /// A connection for reads that need no transaction.
    pub async fn read(&self) -> Result<Reader, StoreError> {
        self.engine.read().await
    }

    /// A connection for reads that may trail the latest writes by a replica's replay lag: the
    /// replica when one is set and answers, else the primary. Never for a user's own data right
    /// after their write (balance, orders, coupons): those read [`Db::read`].
    pub async fn read_lagging(&self) -> Result<Reader, StoreError> {
        self.engine.read_lagging().await
    }

    /// Runs `work` in a savepoint of the committer's next transaction, shared with the other
    /// writes waiting (see `batch`); `Ok` only once that committed. Transient failures run the
    /// batch again with jittered backoff within the write's deadline; a row held by another
    /// session past the lock timeout answers this write alone with [`Fault::LockHeld`], undone.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        E: From<StoreError> + StoreFault + Send + 'static,
    {
        self.committer.write(work).await
    }

    /// Runs `item` set-based together with the other writes of its kind waiting at that
    /// moment, its key claimed and its answer remembered (see `batch`, `idempotency`);
    /// answered once it committed.
    pub async fn write_shared<W: Shared>(&self, item: W) -> SharedOutcome<W> {
        self.committer.write_shared(item).await
    }

    /// Ready when writes are not waiting without progress, the database answers and, after
    /// writes failed for lack of storage, takes a probe write again: so readiness recovers by
    /// itself once the fault clears.
    pub async fn ready(&self) -> Result<(), StoreError> {
        if self.committer.stalled() {
            return Err(StoreError::new(
                Fault::Unavailable,
                "writes are waiting and none has been stored for a while",
            ));
        }
        // A database that does not answer at all is not ready either, and says so promptly.
        let ping = async { self.read().await?.ping().await };
        tokio::time::timeout(READY_WAIT, ping)
            .await
            .map_err(|_| StoreError::new(Fault::Unavailable, "the database did not answer"))??;
        if self.writes_failing.load(Ordering::Relaxed) {
            self.write(|conn| conn.probe_write()).await?;
        }
        Ok(())
    }

    /// Hands up to `limit` undelivered events to `deliver`, which returns the ids it delivered
    /// (and anything else the caller wants back); those are marked delivered.
    ///
    /// A backend with many writers (PostgreSQL) claims the events with row locks held until
    /// they are marked, so instances never send the same batch twice. One with a single writer
    /// (SQLite), which must not wait on the network, reads, delivers, then marks in a short
    /// write.
    pub async fn deliver_outbox<R, F, Fut>(
        &self,
        limit: i64,
        now: chrono::DateTime<chrono::Utc>,
        deliver: F,
    ) -> Result<(usize, R), StoreError>
    where
        F: FnOnce(Vec<Event>) -> Fut,
        Fut: Future<Output = (Vec<i64>, R)>,
    {
        if let Some(lone) = self.engine.lone_writes() {
            let mut tx = lone.begin(WRITE_DEADLINE).await?;
            let events = tx.conn().pending_events(limit).await?;
            let (delivered, rest) = deliver(events).await;
            tx.conn().mark_delivered(&delivered, now).await?;
            tx.commit().await?;
            return Ok((delivered.len(), rest));
        }
        let events = self.read().await?.pending_events(limit).await?;
        let (delivered, rest) = deliver(events).await;
        let count = delivered.len();
        let ids = Arc::new(delivered);
        self.write(move |conn| {
            let ids = ids.clone();
            Box::pin(async move { conn.mark_delivered(&ids, now).await })
        })
        .await?;
        Ok((count, rest))
    }

    /// Pool usage, for the metrics endpoint.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.engine.pool_stats()
    }

    /// The write queue now, for the metrics endpoint.
    pub fn write_queue(&self) -> QueueLoad {
        self.committer.load()
    }

    /// Writes are failing as readiness judges them without asking the database: storage
    /// refused them and none has committed since, or they wait and none commits.
    pub fn writes_failing(&self) -> bool {
        self.writes_failing.load(Ordering::Relaxed) || self.committer.stalled()
    }

    pub async fn close(&self) {
        self.engine.close().await
    }
}
