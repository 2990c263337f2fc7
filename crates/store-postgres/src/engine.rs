//! The PostgreSQL engine: a pool for reads and for writes that run in transactions of their
//! own, the committers' transactions from the same pool, and an optional read replica.

use async_trait::async_trait;
use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgPool, Postgres};
use std::time::Duration;

use crate::error::{db, from_commit};
use crate::replica::Replica;
use crate::PgConn;
use commerce_store::{
    Backend, Batching, Committer, Conn, Db, Engine, Fault, LoneWrites, PoolStats, ReadConn, Reader,
    Row, Source, StoreError, PROBE_WAIT, WRITE_DEADLINE,
};
use ref_cast::RefCast;

/// How every write transaction starts. A write waits at most this long for a row another
/// session holds: a batch's rows are held by another batch for milliseconds, so a longer wait
/// means a stuck session (a manual transaction, a stalled instance); then the committer sets
/// aside the writes that need that row and the others go on.
const BEGIN: &str = "BEGIN; SET LOCAL lock_timeout = '500ms'";

/// Connects to the PostgreSQL database at `url`, with reads that may trail the primary served
/// by the streaming replica at `replica_url` when there is one.
pub async fn connect(
    url: &str,
    replica_url: Option<&str>,
    max_connections: u32,
    batching: Batching,
) -> Result<Db, StoreError> {
    let max_connections = max_connections.max(2);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // A connection that does not come within the write deadline is an outage, not a
        // reason to hold the request any longer.
        .acquire_timeout(WRITE_DEADLINE)
        .connect(url)
        .await
        .map_err(db)?;
    let replica = replica_url
        .map(|url| Replica::connect(url, max_connections))
        .transpose()?;
    let source = PgSource(pool.clone());
    let engine = PgEngine { pool, replica };
    Ok(Db::new(engine, batching, |writes_failing, batching| {
        Committer::start(source, writes_failing, batching)
    }))
}

#[derive(Debug)]
struct PgEngine {
    pool: PgPool,
    replica: Option<Replica>,
}

#[async_trait]
impl Engine for PgEngine {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::new(Fault::Unavailable, e))
    }

    async fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader::new(Pooled(self.pool.acquire().await.map_err(db)?)))
    }

    async fn read_lagging(&self) -> Result<Reader, StoreError> {
        if let Some(replica) = &self.replica {
            if let Some(conn) = replica.acquire().await {
                return Ok(Reader::new(Pooled(conn)));
            }
        }
        self.read().await
    }

    fn lone_writes(&self) -> Option<&dyn LoneWrites> {
        Some(self)
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![PoolStats {
            name: "main",
            open: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }]
    }

    async fn close(&self) {
        if let Some(replica) = &self.replica {
            replica.close().await;
        }
        self.pool.close().await;
    }
}

#[async_trait]
impl LoneWrites for PgEngine {
    async fn begin(
        &self,
        wait: Duration,
    ) -> Result<Box<dyn commerce_store::Transaction>, StoreError> {
        Ok(Box::new(Transaction::begin(&self.pool, BEGIN, wait).await?))
    }
}

/// A pooled connection for reads.
struct Pooled(PoolConnection<Postgres>);

#[async_trait]
impl ReadConn for Pooled {
    fn conn(&self) -> &(dyn Conn + 'static) {
        PgConn::ref_cast(&self.0)
    }

    fn conn_mut(&mut self) -> &mut (dyn Conn + 'static) {
        PgConn::ref_cast_mut(&mut self.0)
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        self.0.ping().await.map_err(db)
    }
}

/// One transaction on a pooled connection. Unless it ends in a successful `COMMIT` or
/// `ROLLBACK`, the connection is closed instead of going back to the pool: after a failure,
/// or when the request's future is dropped half-way, its state is unknown.
struct Transaction {
    conn: PoolConnection<Postgres>,
    open: bool,
}

impl Transaction {
    async fn begin(pool: &PgPool, begin: &str, wait: Duration) -> Result<Self, StoreError> {
        let conn = tokio::time::timeout(wait, pool.acquire())
            .await
            .map_err(|_| {
                StoreError::new(
                    Fault::Unavailable,
                    "no database connection within the deadline",
                )
            })?
            .map_err(db)?;
        let mut tx = Transaction { conn, open: true };
        tx.conn.execute(begin).await.map_err(db)?;
        Ok(tx)
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        self.conn.execute("COMMIT").await.map_err(from_commit)?;
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

impl std::ops::Deref for Transaction {
    type Target = dyn Conn;
    fn deref(&self) -> &Self::Target {
        PgConn::ref_cast(&self.conn)
    }
}

impl std::ops::DerefMut for Transaction {
    fn deref_mut(&mut self) -> &mut Self::Target {
        PgConn::ref_cast_mut(&mut self.conn)
    }
}

impl commerce_store::Transaction for Transaction {
    fn conn(&mut self) -> &mut dyn Conn {
        PgConn::ref_cast_mut(&mut self.conn)
    }

    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(Transaction::commit(*self))
    }

    fn rollback(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(Transaction::rollback(*self))
    }
}

/// The committers' transactions: any connection of the pool.
struct PgSource(PgPool);

impl Source for PgSource {
    type Tx = Transaction;

    async fn begin(&self, wait: Duration) -> Result<Transaction, StoreError> {
        Transaction::begin(&self.0, BEGIN, wait).await
    }

    async fn commit(tx: Transaction) -> Result<(), StoreError> {
        tx.commit().await
    }

    async fn rollback(tx: Transaction) {
        tx.rollback().await
    }

    async fn held_rows(&self, rows: &[Row]) -> Result<Vec<Row>, StoreError> {
        let mut tx = Transaction::begin(&self.0, "BEGIN", PROBE_WAIT).await?;
        let held = tx.held_rows(rows).await?;
        tx.rollback().await;
        Ok(held)
    }
}
