//! Storage: one interface and two native implementations.
//!
//! Services talk to [`Conn`], one trait per capability gathered in one, and never see SQL.
//! `postgres/` implements it on sqlx's PostgreSQL driver with native types (`TIMESTAMPTZ`,
//! `DATE`, arrays); `sqlite/` on rusqlite, its statements run synchronously on a writer thread
//! of its own and on the caller's thread for reads. Backend differences live inside those two
//! folders and in the dispatch below, nowhere else.
//!
//! Writes run through [`Db::write`] and [`Db::write_shared`]: one transaction, answered only
//! after `COMMIT` succeeded. Orders and coupon issues (`write_shared`, both backends) and on
//! SQLite every write share their transaction with the writes waiting at that moment: see
//! `batch`.
//! A storage error inside it discards the connection (SQLite rolls a transaction back by itself
//! on disk-full and I/O errors, so its state cannot be trusted), transient errors run the work
//! again within [`WRITE_DEADLINE`], and the rest reach the caller classified (see [`Fault`]).

pub mod balance;
mod batch;
mod committer;
pub mod coupon;
mod error;
pub mod idempotency;
pub mod order;
pub mod outbox;
pub mod platform;
mod postgres;
pub mod product;
mod queue;
mod replica;
mod retry;
mod rows;
mod source;
mod sqlite;

pub use batch::{Batching, Shared, DEFAULT_COMMITTERS, DEFAULT_MAX_BATCH};
pub use committer::QueueLoad;
pub use error::{Fault, StoreError, StoreFault};
pub use retry::WRITE_DEADLINE;
pub use rows::Row;

use async_trait::async_trait;
use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::Executor;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use outbox::Event;
use retry::Deadline;

/// Everything a service can ask of a database connection, in or out of a transaction.
#[async_trait]
pub trait Conn:
    balance::BalanceStore
    + product::ProductStore
    + coupon::CouponStore
    + order::OrderStore
    + platform::PlatformStore
    + outbox::OutboxStore
    + idempotency::IdempotencyStore
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

/// The one backend type of the project: the server, the tests and the load generator use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
enum Pools {
    /// Writes of their own run in transactions of their own on the pool; [`Shared`] writes
    /// queue for the committers.
    Postgres {
        pool: sqlx::PgPool,
        committer: committer::Committer,
    },
    /// SQLite allows one writer at a time: writes queue for the committer, which commits them
    /// in batches on its one write connection instead of spinning on `SQLITE_BUSY`; reads use
    /// `read` and never block on WAL.
    Sqlite {
        read: sqlite::Readers,
        committer: committer::Committer,
        /// Where the database is, for migrations.
        path: sqlite::Location,
    },
}

/// How long readiness waits for the database to answer.
const READY_WAIT: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Db {
    pools: Pools,
    /// Set while writes fail for lack of storage; a committed write clears it.
    writes_failing: Arc<AtomicBool>,
    /// How long a write may take to start (see [`Batching::deadline`]).
    deadline: Duration,
    /// A PostgreSQL streaming replica for reads that may trail the primary.
    replica: Option<replica::Replica>,
}

impl Db {
    /// Connects to `url` (`sqlite://PATH`, created if missing, or `postgres://...`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, StoreError> {
        Self::connect_batched(url, max_connections, Batching::default()).await
    }

    /// As [`Db::connect`], with writes grouped into commits as `batching` says.
    pub async fn connect_batched(
        url: &str,
        max_connections: u32,
        batching: Batching,
    ) -> Result<Db, StoreError> {
        let max_connections = max_connections.max(2);
        let writes_failing = Arc::<AtomicBool>::default();
        let pools = match Backend::from_url(url) {
            Some(Backend::Postgres) => {
                let pool = postgres::pool(url, max_connections).await?;
                let committer = committer::Committer::start(
                    PgSource(pool.clone()),
                    writes_failing.clone(),
                    batching,
                );
                Pools::Postgres { pool, committer }
            }
            Some(Backend::Sqlite) => {
                let path = sqlite::Location::parse(url)?;
                // The writer opens first so the WAL switch happens before readers open.
                let writer = sqlite::Writer::open(path.clone())?;
                let read = sqlite::Readers::new(path.clone(), max_connections);
                let committer = committer::Committer::start_on_own_thread(
                    writer,
                    writes_failing.clone(),
                    batching,
                );
                Pools::Sqlite {
                    read,
                    committer,
                    path,
                }
            }
            None => {
                return Err(StoreError::new(
                    Fault::Bug,
                    "unsupported database URL: use sqlite://PATH or postgres://...",
                ))
            }
        };
        Ok(Db {
            pools,
            writes_failing,
            deadline: batching.deadline.min(WRITE_DEADLINE),
            replica: None,
        })
    }

    /// Serves [`Db::read_lagging`] from the PostgreSQL replica at `url` (streaming replication
    /// of this database). Nothing is asked of it yet: a replica that is down is skipped.
    pub fn with_replica(mut self, url: &str, max_connections: u32) -> Result<Db, StoreError> {
        if self.backend() != Backend::Postgres || Backend::from_url(url) != Some(Backend::Postgres)
        {
            return Err(StoreError::new(
                Fault::Bug,
                "a read replica needs PostgreSQL, for it and for the primary",
            ));
        }
        self.replica = Some(replica::Replica::connect(url, max_connections.max(2))?);
        Ok(self)
    }

    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Postgres { .. } => Backend::Postgres,
            Pools::Sqlite { .. } => Backend::Sqlite,
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match &self.pools {
            Pools::Postgres { pool, .. } => sqlx::migrate!("./migrations/postgres").run(pool).await,
            Pools::Sqlite { path, .. } => return sqlite::migrate(path.clone()).await,
        };
        result.map_err(|e| StoreError::new(Fault::Unavailable, e))
    }

    /// A connection for reads that need no transaction.
    pub async fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader(match &self.pools {
            Pools::Postgres { pool, .. } => Pooled::Postgres(pool.acquire().await?),
            Pools::Sqlite { read, .. } => Pooled::Sqlite(read.acquire().await?),
        }))
    }

    /// A connection for reads that may trail the latest writes by a replica's replay lag: the
    /// replica when one is set and answers, else the primary. Never for a user's own data right
    /// after their write (balance, orders, coupons): those read [`Db::read`].
    pub async fn read_lagging(&self) -> Result<Reader, StoreError> {
        if let Some(replica) = &self.replica {
            if let Some(conn) = replica.acquire().await {
                return Ok(Reader(Pooled::Postgres(conn)));
            }
        }
        self.read().await
    }

    /// Runs `work` in a transaction and commits it if `work` succeeds; `Ok` only once the
    /// commit did. Transient failures run `work` again with jittered backoff until
    /// [`WRITE_DEADLINE`]; other storage failures are answered at once. On SQLite `work` shares
    /// its transaction with the other writes waiting, each in a savepoint (see `batch`).
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        E: From<StoreError> + StoreFault + Send + 'static,
    {
        match &self.pools {
            Pools::Postgres { pool, .. } => {
                retrying(pool, self.deadline, &self.writes_failing, work).await
            }
            Pools::Sqlite { committer, .. } => committer.write(work).await,
        }
    }

    /// Runs `item` set-based together with the other writes of its kind waiting at that
    /// moment, in one transaction on either backend (see `batch`); answered once it committed.
    pub async fn write_shared<W: Shared>(&self, item: W) -> W::Output {
        match &self.pools {
            Pools::Postgres { committer, .. } | Pools::Sqlite { committer, .. } => {
                committer.write_shared(item).await
            }
        }
    }

    /// Ready when writes are not waiting without progress, the database answers and, after
    /// writes failed for lack of storage, takes a probe write again: so readiness recovers by
    /// itself once the fault clears.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let (Pools::Postgres { committer, .. } | Pools::Sqlite { committer, .. }) = &self.pools;
        if committer.stalled() {
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
    /// PostgreSQL claims the events with row locks held until they are marked, so instances
    /// never send the same batch twice. SQLite has one writer, which must not wait on the
    /// network: it reads, delivers, then marks in a short write.
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
        match &self.pools {
            Pools::Postgres { pool, .. } => {
                let mut tx = Transaction::begin(pool, "BEGIN", WRITE_DEADLINE).await?;
                let events = tx.pending_events(limit).await?;
                let (delivered, rest) = deliver(events).await;
                tx.mark_delivered(&delivered, now).await?;
                tx.commit().await?;
                Ok((delivered.len(), rest))
            }
            Pools::Sqlite { .. } => {
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
        }
    }

    /// Pool usage, for the metrics endpoint: (pool name, open connections, idle connections,
    /// the pool's limit).
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, usize, u32)> {
        match &self.pools {
            Pools::Postgres { pool, .. } => {
                let max = pool.options().get_max_connections();
                vec![("main", pool.size(), pool.num_idle(), max)]
            }
            // The write connection is the committer's own, always open.
            Pools::Sqlite { read, .. } => vec![read.stats(), ("write", 1, 0, 1)],
        }
    }

    /// The write queue now, for the metrics endpoint.
    pub fn write_queue(&self) -> QueueLoad {
        let (Pools::Postgres { committer, .. } | Pools::Sqlite { committer, .. }) = &self.pools;
        committer.load()
    }

    /// Writes are failing as readiness judges them without asking the database: storage
    /// refused them and none has committed since, or they wait and none commits.
    pub fn writes_failing(&self) -> bool {
        let (Pools::Postgres { committer, .. } | Pools::Sqlite { committer, .. }) = &self.pools;
        self.writes_failing.load(Ordering::Relaxed) || committer.stalled()
    }

    pub async fn close(&self) {
        if let Some(replica) = &self.replica {
            replica.close().await;
        }
        match &self.pools {
            Pools::Postgres { pool, .. } => pool.close().await,
            Pools::Sqlite { read, .. } => read.close(),
        }
    }
}

/// A pooled connection of either backend.
enum Pooled {
    Postgres(PoolConnection<sqlx::Postgres>),
    Sqlite(sqlite::ReadConn),
}

/// A connection for reads, used as a [`Conn`].
pub struct Reader(Pooled);

impl Reader {
    async fn ping(&mut self) -> Result<(), StoreError> {
        use sqlx::Connection;
        match &mut self.0 {
            Pooled::Postgres(conn) => conn.ping().await?,
            Pooled::Sqlite(conn) => conn.ping()?,
        }
        Ok(())
    }
}

impl Deref for Reader {
    type Target = dyn Conn;
    fn deref(&self) -> &Self::Target {
        match &self.0 {
            Pooled::Postgres(conn) => &**conn,
            Pooled::Sqlite(conn) => &**conn,
        }
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.0 {
            Pooled::Postgres(conn) => &mut **conn,
            Pooled::Sqlite(conn) => &mut **conn,
        }
    }
}

/// One transaction on a pooled PostgreSQL connection. Unless it ends in a successful `COMMIT`
/// or `ROLLBACK`, the connection is closed instead of going back to the pool: after a failure,
/// or when the request's future is dropped half-way, its state is unknown.
struct Transaction {
    conn: PoolConnection<sqlx::Postgres>,
    open: bool,
}

impl Transaction {
    async fn begin(pool: &sqlx::PgPool, begin: &str, wait: Duration) -> Result<Self, StoreError> {
        let conn = tokio::time::timeout(wait, pool.acquire())
            .await
            .map_err(|_| {
                StoreError::new(
                    Fault::Unavailable,
                    "no database connection within the deadline",
                )
            })??;
        let mut tx = Transaction { conn, open: true };
        tx.conn.execute(begin).await?;
        Ok(tx)
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        self.conn
            .execute("COMMIT")
            .await
            .map_err(StoreError::from_commit)?;
        self.open = false;
        Ok(())
    }

    async fn rollback(mut self) {
        if self.conn.execute("ROLLBACK").await.is_ok() {
            self.open = false;
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

impl Deref for Transaction {
    type Target = dyn Conn;
    fn deref(&self) -> &Self::Target {
        &*self.conn
    }
}

impl DerefMut for Transaction {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.conn
    }
}

/// The committers' transactions on PostgreSQL: any connection of the pool.
struct PgSource(sqlx::PgPool);

impl source::Source for PgSource {
    type Tx = Transaction;

    async fn begin(&self, wait: Duration) -> Result<Transaction, StoreError> {
        Transaction::begin(&self.0, postgres::BEGIN, wait).await
    }

    async fn commit(tx: Transaction) -> Result<(), StoreError> {
        tx.commit().await
    }

    async fn rollback(tx: Transaction) {
        tx.rollback().await
    }

    async fn held_rows(&self, rows: &[Row]) -> Result<Vec<Row>, StoreError> {
        let mut tx = Transaction::begin(&self.0, "BEGIN", committer::PROBE_WAIT).await?;
        let held = tx.held_rows(rows).await?;
        tx.rollback().await;
        Ok(held)
    }
}

/// Runs `work` in one transaction, again after a transient failure until `deadline`, and keeps
/// `writes_failing` up to date.
async fn retrying<T, E, F>(
    pool: &sqlx::PgPool,
    deadline: Duration,
    writes_failing: &AtomicBool,
    mut work: F,
) -> Result<T, E>
where
    F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>>,
    E: From<StoreError> + StoreFault,
{
    let mut deadline = Deadline::start(deadline);
    loop {
        let outcome = in_transaction(pool, deadline.remaining(), &mut work).await;
        let fault = outcome
            .as_ref()
            .err()
            .and_then(|e| e.store_error())
            .map(StoreError::fault);
        match fault {
            Some(Fault::Transient | Fault::LockHeld) => {
                if let Some(pause) = deadline.next_pause() {
                    metrics::counter!("db_transaction_retries_total").increment(1);
                    tokio::time::sleep(pause).await;
                    continue;
                }
            }
            Some(Fault::Unavailable | Fault::OutcomeUnknown) => {
                writes_failing.store(true, Ordering::Relaxed);
            }
            Some(Fault::UniqueViolation | Fault::Bug) => {}
            None => writes_failing.store(false, Ordering::Relaxed),
        }
        return outcome;
    }
}

/// One attempt of a write: begin, work, commit; a business rejection rolls back and keeps the
/// connection, a storage error drops it (see [`Transaction`]).
async fn in_transaction<T, E, F>(pool: &sqlx::PgPool, wait: Duration, work: &mut F) -> Result<T, E>
where
    F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>>,
    E: From<StoreError> + StoreFault,
{
    let mut tx = Transaction::begin(pool, postgres::BEGIN, wait).await?;
    match work(&mut *tx).await {
        Ok(value) => {
            tx.commit().await?;
            metrics::counter!("db_commits_total").increment(1);
            Ok(value)
        }
        Err(error) => {
            if error.store_error().is_none() {
                tx.rollback().await;
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn versions(backend: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let (sqlite, postgres) = (versions("sqlite"), versions("postgres"));
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite, postgres,
            "each migration exists for both backends, under one name"
        );
    }
}
