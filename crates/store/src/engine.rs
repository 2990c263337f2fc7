//! What a backend crate provides beside [`Conn`]: its connections for reads, transactions of
//! their own for the outbox's delivery, migrations and upkeep. [`crate::Db`] holds one.

use async_trait::async_trait;
use futures::future::BoxFuture;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use crate::{Conn, StoreError};

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

/// A pool's usage, for the metrics endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub name: &'static str,
    pub open: u32,
    pub idle: usize,
    pub max: u32,
}

/// A backend.
#[async_trait]
pub trait Engine: Send + Sync + fmt::Debug + 'static {
    fn backend(&self) -> Backend;

    /// Brings the schema up to date.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A connection for reads that need no transaction.
    async fn read(&self) -> Result<Reader, StoreError>;

    /// A connection for reads that may trail the latest writes (a replica's), else [`read`].
    ///
    /// [`read`]: Engine::read
    async fn read_lagging(&self) -> Result<Reader, StoreError> {
        self.read().await
    }

    /// Transactions of their own, beside the committer's, where writers run side by side
    /// (PostgreSQL): only for delivering the outbox, whose claim (`FOR UPDATE SKIP LOCKED`)
    /// must hold its rows across the network while writes go on. `None` with one writer
    /// (SQLite). Every other write queues for the committer.
    fn lone_writes(&self) -> Option<&dyn LoneWrites>;

    fn pool_stats(&self) -> Vec<PoolStats>;

    async fn close(&self);
}

/// Write transactions of their own, beside the committer's.
#[async_trait]
pub trait LoneWrites: Send + Sync {
    /// A write transaction, waiting at most `wait` for a connection.
    async fn begin(&self, wait: Duration) -> Result<Box<dyn Transaction>, StoreError>;
}

/// An open write transaction. Dropped without a successful commit or rollback, its connection
/// is discarded: after a failure, or when its future was dropped half-way, its state is unknown.
pub trait Transaction: Send {
    fn conn(&mut self) -> &mut dyn Conn;
    /// `Err` means nothing was stored, unless its fault is [`crate::Fault::OutcomeUnknown`].
    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>>;
    fn rollback(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// A pooled connection for reads.
#[async_trait]
pub trait ReadConn: Send {
    fn conn(&self) -> &(dyn Conn + 'static);
    fn conn_mut(&mut self) -> &mut (dyn Conn + 'static);
    /// Asks the database to answer, nothing more.
    async fn ping(&mut self) -> Result<(), StoreError>;
}

/// A connection for reads, used as a [`Conn`].
pub struct Reader(Box<dyn ReadConn>);

impl Reader {
    pub fn new(conn: impl ReadConn + 'static) -> Reader {
        Reader(Box::new(conn))
    }

    pub async fn ping(&mut self) -> Result<(), StoreError> {
        self.0.ping().await
    }
}

impl Deref for Reader {
    type Target = dyn Conn;
    fn deref(&self) -> &Self::Target {
        self.0.conn()
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.conn_mut()
    }
}
