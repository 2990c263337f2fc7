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

/// The page size of a new database. Every page a commit touches goes to the WAL whole, and an
/// order touches a few pages of b-trees it reaches at random (its user's orders and history,
/// its product, its balance): at 4 KiB pages each costs 4 KiB for a few bytes changed. In
/// order-rush-spread, 512 bytes (SQLite's smallest) write about 3 KB of WAL per order where
/// 4 KiB pages write 6 to 7.5 KB and 1 KiB pages 3.4 KB, at the same throughput. SQLite only
/// takes it on a new file (in WAL mode not even by VACUUM): an existing database keeps its
/// pages.
const PAGE_SIZE: u32 = 512;

/// WAL bytes written since the last checkpoint that call for another (SQLite's own default
/// for its automatic checkpoint is 1000 pages, 4 MiB at 4 KiB pages).
const CHECKPOINT_BYTES: u64 = 4 << 20;

/// How often the checkpointer looks at a WAL that grows slower than that.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Past this many bytes in the WAL, a checkpoint starts it over: passive ones copy the frames
/// but seldom find the moment (no commit since their copy began) when the writer may go back
/// to the WAL's start, so it would grow without bound, and each checkpoint copy more.
const WAL_RESTART_BYTES: i64 = 2 * CHECKPOINT_BYTES as i64;

/// How long a restarting checkpoint waits for the readers still reading frames it copied; it
/// holds the writer meanwhile, so it gives up soon and tries again after the next passive one.
const RESTART_WAIT: Duration = Duration::from_millis(20);

/// The WAL file is cut back to this size when it starts over.
const WAL_KEPT_BYTES: i64 = 2 * WAL_RESTART_BYTES;

/// A WAL frame's header, written before each page.
const FRAME_HEADER_BYTES: u64 = 24;

/// The committer's transaction source on SQLite.
pub(crate) struct Writer(Arc<Inner>);

struct Inner {
    location: Location,
    /// The write connection while no transaction has it; `None` after one was discarded
    /// (the next transaction opens a fresh one).
    idle: Mutex<Option<SqliteConn>>,
    /// A WAL frame's size: the file's page (fixed once it is in WAL mode) and its header.
    frame_bytes: u64,
    /// WAL bytes written since the checkpointer last looked.
    bytes_since_checkpoint: Arc<AtomicU64>,
    /// Wakes the checkpointer; dropped with the writer, which stops it.
    checkpoint: SyncSender<()>,
}

impl Writer {
    /// Opens the write connection (creating the database unless the URL's `mode` says
    /// otherwise) in WAL mode, and starts its checkpointer.
    pub fn open(location: Location) -> Result<Writer, StoreError> {
        let conn = open_writer(&location)?;
        let page_bytes: u64 = conn.one("PRAGMA page_size", [], |r| r.get(0))?;
        let checkpointer = location.open(OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        checkpointer.0.busy_timeout(RESTART_WAIT).map_err(db)?;
        let bytes_since_checkpoint = Arc::new(AtomicU64::new(0));
        let (checkpoint, wake) = mpsc::sync_channel(1);
        let bytes = bytes_since_checkpoint.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoints(checkpointer, page_bytes, &bytes, &wake))
            .map_err(|e| StoreError::new(commerce_store::Fault::Unavailable, e))?;
        // Shown from the start, so its rate can be graphed.
        metrics::counter!("db_wal_bytes_total").increment(0);
        Ok(Writer(Arc::new(Inner {
            location,
            idle: Mutex::new(Some(conn)),
            frame_bytes: page_bytes + FRAME_HEADER_BYTES,
            bytes_since_checkpoint,
            checkpoint,
        })))
    }
}

fn open_writer(location: &Location) -> Result<SqliteConn, StoreError> {
    let conn = location.open(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
    // Before the switch to WAL, which writes the first page of a new file.
    conn.run(&format!("PRAGMA page_size = {PAGE_SIZE}"), [])?;
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
    /// [`CHECKPOINT_BYTES`].
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
        let (Ok(pages), 0) = (u64::try_from(pages), status) else {
            return;
        };
        let bytes = pages * self.writer.frame_bytes;
        metrics::counter!("db_wal_bytes_total").increment(bytes);
        let since = self
            .writer
            .bytes_since_checkpoint
            .fetch_add(bytes, Ordering::Relaxed);
        if since + bytes >= CHECKPOINT_BYTES {
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
/// whenever the writer has added [`CHECKPOINT_BYTES`] or [`CHECKPOINT_EVERY`] passed with
/// anything added; a RESTART one once the WAL passes [`WAL_RESTART_BYTES`]. That one comes
/// right after a passive copy, so it has little left to copy while it holds the writer, and
/// waits at most [`RESTART_WAIT`] for readers.
fn checkpoints(conn: SqliteConn, page_bytes: u64, bytes: &AtomicU64, wake: &mpsc::Receiver<()>) {
    loop {
        match wake.recv_timeout(CHECKPOINT_EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if bytes.swap(0, Ordering::Relaxed) == 0 {
            continue;
        }
        let checkpoint = |mode: &str| {
            conn.one(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
        };
        let result = checkpoint("PASSIVE").and_then(|(in_wal, _)| {
            if in_wal * page_bytes as i64 > WAL_RESTART_BYTES {
                checkpoint("RESTART")?;
            }
            Ok(())
        });
        if let Err(error) = result {
            tracing::warn!(%error, "WAL checkpoint failed; the next one tries again");
            // The pages are still to be copied.
            bytes.fetch_add(1, Ordering::Relaxed);
        }
    }
}
