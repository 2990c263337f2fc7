//! The one write connection, as the committer's transaction source, and its WAL.
//!
//! The committer runs on a thread of its own (see `Committer::start_on_own_thread`), so a
//! whole batch runs here synchronously. Commits only append to the WAL: SQLite's automatic
//! checkpoint (copying the WAL back into the database file, with an fsync, inside the commit
//! that crosses its threshold) is off, and a checkpointer thread of its own copies it instead,
//! beside the writer.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::OpenFlags;

use crate::{db, Location, SqliteConn, BUSY_TIMEOUT};
use commerce_store::Source;
use commerce_store::{Conn, Row, StoreError};

/// WAL pages written since the last checkpoint that call for another: SQLite's own default
/// for its automatic checkpoint (about 4 MiB at 4 KiB pages).
const CHECKPOINT_PAGES: u64 = 1000;

/// How often the checkpointer looks at a WAL that grows slower than that.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Past this many pages in the WAL, a checkpoint waits for the readers that keep it from
/// starting over (briefly blocking the writer too), so the WAL cannot grow without bound.
const WAL_HARD_LIMIT_PAGES: i64 = 16 * CHECKPOINT_PAGES as i64;

/// The WAL file is cut back to this size when it starts over.
const WAL_KEPT_BYTES: i64 = 64 << 20;

/// A WAL frame's header, written before each page.
const FRAME_HEADER_BYTES: u64 = 24;

/// The committer's transaction source on SQLite.
pub(crate) struct Writer(Arc<Inner>);

struct Inner {
    location: Location,
    /// The write connection while no transaction has it; `None` after one was discarded
    /// (the next transaction opens a fresh one).
    idle: Mutex<Option<SqliteConn>>,
    /// WAL pages written since the checkpointer last looked.
    pages_since_checkpoint: Arc<AtomicU64>,
    /// Wakes the checkpointer; dropped with the writer, which stops it.
    checkpoint: SyncSender<()>,
}

impl Writer {
    /// Opens the write connection (creating the database unless the URL's `mode` says
    /// otherwise) in WAL mode, and starts its checkpointer.
    pub fn open(location: Location) -> Result<Writer, StoreError> {
        let conn = open_writer(&location)?;
        let checkpointer = location.open(OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let pages_since_checkpoint = Arc::new(AtomicU64::new(0));
        let (checkpoint, wake) = mpsc::sync_channel(1);
        let pages = pages_since_checkpoint.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoints(checkpointer, &pages, &wake))
            .map_err(|e| StoreError::new(commerce_store::Fault::Unavailable, e))?;
        // Shown from the start, so its rate can be graphed.
        metrics::counter!("db_wal_bytes_total").increment(0);
        Ok(Writer(Arc::new(Inner {
            location,
            idle: Mutex::new(Some(conn)),
            pages_since_checkpoint,
            checkpoint,
        })))
    }
}

fn open_writer(location: &Location) -> Result<SqliteConn, StoreError> {
    let conn = location.open(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
    let mode: String = conn
        .0
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::new(
            commerce_store::Fault::Unavailable,
            format!("the database stays in journal mode {mode}, not WAL"),
        ));
    }
    conn.0
        .execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_KEPT_BYTES};"
        ))
        .map_err(db)?;
    Ok(conn)
}

/// One write transaction on the write connection.
pub(crate) struct WriteTx {
    conn: Option<SqliteConn>,
    writer: Arc<Inner>,
}

impl Source for Writer {
    type Tx = WriteTx;

    async fn begin(&self, wait: Duration) -> Result<WriteTx, StoreError> {
        let idle = self.0.idle.lock().expect("write connection").take();
        let conn = match idle {
            Some(conn) => conn,
            None => open_writer(&self.0.location)?,
        };
        let tx = WriteTx {
            conn: Some(conn),
            writer: self.0.clone(),
        };
        // Another process holding the lock is waited for only as long as the batch may wait.
        tx.sqlite()
            .0
            .busy_timeout(wait.min(BUSY_TIMEOUT))
            .map_err(db)?;
        // IMMEDIATE takes the write lock at once, so a transaction never fails half-way to
        // upgrade a read lock.
        tx.sqlite().run("BEGIN IMMEDIATE", [])?;
        Ok(tx)
    }

    async fn commit(tx: WriteTx) -> Result<(), StoreError> {
        let conn = tx.sqlite();
        // SQLite answers every COMMIT itself, in this process: an error means nothing was
        // stored.
        conn.run("COMMIT", [])?;
        tx.count_wal_pages();
        Ok(())
    }

    async fn rollback(tx: WriteTx) {
        // Dropping it rolls back, and discards the connection if that fails.
        drop(tx);
    }

    /// SQLite locks the whole database, never a row: no row is held by anyone.
    async fn held_rows(&self, _rows: &[Row]) -> Result<Vec<Row>, StoreError> {
        Ok(Vec::new())
    }
}

impl WriteTx {
    fn sqlite(&self) -> &SqliteConn {
        self.conn.as_ref().expect("a transaction's connection")
    }

    /// Counts the WAL pages the connection wrote since the last count (the commit's, and any
    /// a transaction spilled before it), as bytes, and wakes the checkpointer past
    /// [`CHECKPOINT_PAGES`].
    fn count_wal_pages(&self) {
        let conn = self.sqlite();
        let (mut pages, mut highest) = (0, 0);
        // SAFETY: the handle is this open connection's, used on this thread only; the call
        // reads (and resets) a counter of the connection's own.
        let status = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                conn.0.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_WRITE,
                &mut pages,
                &mut highest,
                1,
            )
        };
        let page_size = conn.one("PRAGMA page_size", [], |r| r.get::<_, u64>(0));
        let (Ok(pages), true, Ok(page_size)) = (u64::try_from(pages), status == 0, page_size)
        else {
            return;
        };
        metrics::counter!("db_wal_bytes_total").increment(pages * (page_size + FRAME_HEADER_BYTES));
        let since = self
            .writer
            .pages_since_checkpoint
            .fetch_add(pages, Ordering::Relaxed);
        if since + pages >= CHECKPOINT_PAGES {
            // A wake already pending will do.
            if let Err(TrySendError::Disconnected(())) = self.writer.checkpoint.try_send(()) {
                tracing::warn!("the WAL checkpointer has stopped");
            }
        }
    }
}

impl Drop for WriteTx {
    /// Rolls back what did not commit; a connection still in a transaction after that is in
    /// a state nobody knows, and is closed (which rolls back whatever is left).
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if !conn.0.is_autocommit() && conn.run("ROLLBACK", []).is_err() {
            return;
        }
        if conn.0.is_autocommit() {
            *self.writer.idle.lock().expect("write connection") = Some(conn);
        }
    }
}

impl Deref for WriteTx {
    type Target = dyn Conn;
    fn deref(&self) -> &Self::Target {
        self.sqlite()
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn.as_mut().expect("a transaction's connection")
    }
}

/// The checkpointer's loop: a PASSIVE checkpoint (which never waits, nor makes anyone wait)
/// whenever the writer has added [`CHECKPOINT_PAGES`] or [`CHECKPOINT_EVERY`] passed with
/// anything added; a RESTART one (which waits for readers) once the WAL passes
/// [`WAL_HARD_LIMIT_PAGES`] because readers kept the passive ones from finishing.
fn checkpoints(conn: SqliteConn, pages: &AtomicU64, wake: &mpsc::Receiver<()>) {
    loop {
        match wake.recv_timeout(CHECKPOINT_EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if pages.swap(0, Ordering::Relaxed) == 0 {
            continue;
        }
        let checkpoint = |mode: &str| {
            conn.one(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
        };
        let result = checkpoint("PASSIVE").and_then(|(in_wal, copied)| {
            if in_wal > WAL_HARD_LIMIT_PAGES && copied < in_wal {
                checkpoint("RESTART")?;
            }
            Ok(())
        });
        if let Err(error) = result {
            tracing::warn!(%error, "WAL checkpoint failed; the next one tries again");
            // The pages are still to be copied.
            pages.fetch_add(1, Ordering::Relaxed);
        }
    }
}
