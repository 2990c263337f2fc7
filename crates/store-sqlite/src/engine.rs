//! The SQLite engine: read-only connections for reads, and one writer whose committer runs on
//! a thread of its own (every write queues for it: SQLite has one writer at a time).

use async_trait::async_trait;

use crate::{migrate, Location, ReadConn, Readers, Writer};
use commerce_store::{
    Backend, Batching, Committer, Conn, Db, Engine, LoneWrites, PoolStats, Reader, StoreError,
};

/// Opens the SQLite database at `url` (`sqlite://PATH`, created if missing unless the URL's
/// `mode` says otherwise), with up to `max_connections` readers.
pub async fn connect(
    url: &str,
    max_connections: u32,
    batching: Batching,
) -> Result<Db, StoreError> {
    let location = Location::parse(url)?;
    // The writer opens first so the WAL switch happens before readers open.
    let writer = Writer::open(location.clone())?;
    let readers = Readers::new(location.clone(), max_connections.max(2));
    let engine = SqliteEngine { readers, location };
    Ok(Db::new(engine, batching, |writes_failing, batching| {
        Committer::start_on_own_thread(writer, writes_failing, batching)
    }))
}

#[derive(Debug)]
struct SqliteEngine {
    readers: Readers,
    /// Where the database is, for migrations.
    location: Location,
}

#[async_trait]
impl Engine for SqliteEngine {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        migrate(self.location.clone()).await
    }

    async fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader::new(self.readers.acquire().await?))
    }

    /// SQLite has one writer: every write queues for the committer.
    fn lone_writes(&self) -> Option<&dyn LoneWrites> {
        None
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        // The write connection is the committer's own, always open.
        let write = PoolStats {
            name: "write",
            open: 1,
            idle: 0,
            max: 1,
        };
        vec![self.readers.stats(), write]
    }

    async fn close(&self) {
        self.readers.close()
    }
}

#[async_trait]
impl commerce_store::ReadConn for ReadConn {
    fn conn(&self) -> &(dyn Conn + 'static) {
        &**self
    }

    fn conn_mut(&mut self) -> &mut (dyn Conn + 'static) {
        &mut **self
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        ReadConn::ping(self)
    }
}
