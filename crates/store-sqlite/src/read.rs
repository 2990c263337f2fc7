//! Read-only connections for reads outside a transaction. WAL lets them read beside the
//! writer without waiting for it. A read runs on the caller's thread: its statements take
//! microseconds, less than a hop to another thread would.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::OpenFlags;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Location, SqliteConn};
use commerce_store::{Conn, Fault, PoolStats, StoreError, WRITE_DEADLINE};

/// At most `max` read connections, opened when first needed and kept.
#[derive(Clone, Debug)]
pub(crate) struct Readers(Arc<Pool>);

#[derive(Debug)]
struct Pool {
    location: Location,
    idle: Mutex<Vec<SqliteConn>>,
    permits: Arc<Semaphore>,
    open: AtomicU32,
    max: u32,
}

impl Readers {
    pub fn new(location: Location, max: u32) -> Readers {
        Readers(Arc::new(Pool {
            location,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max as usize)),
            open: AtomicU32::new(0),
            max,
        }))
    }

    /// A connection, within the write deadline (reads wait no longer than writes would).
    pub async fn acquire(&self) -> Result<ReadConn, StoreError> {
        let permit = tokio::time::timeout(WRITE_DEADLINE, self.0.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                StoreError::new(
                    Fault::Unavailable,
                    "no database connection within the deadline",
                )
            })?
            .map_err(|_| StoreError::new(Fault::Unavailable, "the database is closed"))?;
        let idle = self.0.idle.lock().expect("read connections").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = self.0.location.open(OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                self.0.open.fetch_add(1, Ordering::Relaxed);
                conn
            }
        };
        Ok(ReadConn {
            conn: Some(conn),
            pool: self.0.clone(),
            _permit: permit,
        })
    }

    /// The pool's usage, for the metrics endpoint.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            name: "read",
            open: self.0.open.load(Ordering::Relaxed),
            idle: self.0.idle.lock().expect("read connections").len(),
            max: self.0.max,
        }
    }

    /// Closes the idle connections and refuses new reads.
    pub fn close(&self) {
        self.0.permits.close();
        let closed = std::mem::take(&mut *self.0.idle.lock().expect("read connections"));
        self.0
            .open
            .fetch_sub(closed.len() as u32, Ordering::Relaxed);
    }
}

/// A read connection, back to the pool when dropped.
pub(crate) struct ReadConn {
    conn: Option<SqliteConn>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl ReadConn {
    pub fn ping(&mut self) -> Result<(), StoreError> {
        self.sqlite().one("SELECT 1", [], |_| Ok(()))
    }

    fn sqlite(&self) -> &SqliteConn {
        self.conn.as_ref().expect("a read connection")
    }
}

impl Drop for ReadConn {
    /// Kept unless a read left a transaction open, or the pool closed meanwhile.
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if conn.0.is_autocommit() && !self.pool.permits.is_closed() {
            self.pool.idle.lock().expect("read connections").push(conn);
        } else {
            self.pool.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Deref for ReadConn {
    type Target = dyn Conn;
    fn deref(&self) -> &Self::Target {
        self.sqlite()
    }
}

impl DerefMut for ReadConn {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn.as_mut().expect("a read connection")
    }
}
