//! Where the committers get their transactions: a pool of PostgreSQL connections, or SQLite's
//! one write connection. The committers' rules (deadlines, gone callers, the queue's bound,
//! set-aside writes) exist once, over this.

use std::future::Future;
use std::ops::DerefMut;
use std::time::Duration;

use crate::{Conn, Row, StoreError};

/// Opens, commits and rolls back the committers' transactions.
pub trait Source: Send + Sync + 'static {
    /// One open write transaction. Dropped without [`Source::commit`] or [`Source::rollback`]
    /// succeeding, its connection is discarded: after a failure its state is unknown.
    type Tx: DerefMut<Target = dyn Conn> + Send;

    /// Opens a write transaction, waiting at most `wait` for the connection or its lock.
    fn begin(&self, wait: Duration) -> impl Future<Output = Result<Self::Tx, StoreError>> + Send;

    /// `Err` means nothing was stored, unless its fault is
    /// [`crate::Fault::OutcomeUnknown`].
    fn commit(tx: Self::Tx) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn rollback(tx: Self::Tx) -> impl Future<Output = ()> + Send;

    /// Which of `rows` another session holds locked now, without waiting for them.
    fn held_rows(&self, rows: &[Row]) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;
}
