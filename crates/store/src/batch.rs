//! Group commit: the concurrent writes of this instance share one transaction and one durable
//! commit.
//!
//! With a transaction per request a rush waits for commits one at a time: SQLite has one writer
//! and an fsync per commit, and on PostgreSQL a hot row stays locked from a request's update to
//! its commit. Here writes queue in arrival order; a committer (`committer.rs`) takes what is
//! waiting (up to a bound, [`DEFAULT_MAX_BATCH`] unless set) and runs it in one transaction in
//! that order, commits once, and only then answers them all. A lone write is committed at once.
//!
//! A batch holds two kinds of work:
//! - a [`Shared`] write (an order, a charge, a coupon issue, a cancellation) runs together with
//!   the writes of its kind next to it: its key claimed and its answer stored by the committer,
//!   the business rules decided in Rust over the locked rows, a refusal writing nothing;
//! - any other write (admin, housekeeping) runs alone in a savepoint, so its refusal is undone
//!   alone.

use futures::future::BoxFuture;
use futures::FutureExt;
use opentelemetry::trace::SpanContext;
use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use crate::idempotency::Outcome;
use crate::queue::Slot;
use crate::{
    Conn, Fault, Row, Shared, SharedOutcome, StoreError, StoreFault, WriteKind, WRITE_DEADLINE,
};

/// Most writes in one transaction unless set (`COMMERCE_WRITE_BATCH`). A committer takes
/// whatever waits up to this, so batches are sized by demand: a quiet shop commits each write
/// at once, a rush forms batches of hundreds, and the commit's fixed cost (the disk's flush)
/// is shared by all of them.
pub const DEFAULT_MAX_BATCH: usize = 1024;

/// Committers on PostgreSQL unless set (`COMMERCE_WRITE_COMMITTERS`). With more than one, a
/// batch is decided while the one before waits for its commit; on the 2-core machine measured,
/// where commits are cheap, a second one gained nothing, so one it is.
pub const DEFAULT_COMMITTERS: usize = 1;

/// How writes are grouped into commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Most writes per transaction (1: a commit for each).
    pub max_batch: usize,
    /// Committers working the queue at once on PostgreSQL; SQLite has one writer, so one.
    pub committers: usize,
    /// A write not started within this time of its arrival is never started: it is answered
    /// 503. At most [`WRITE_DEADLINE`]; the server sets it no longer than its request timeout,
    /// so a request answered 503 by that timeout is never carried out afterwards.
    pub deadline: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            max_batch: DEFAULT_MAX_BATCH,
            committers: DEFAULT_COMMITTERS,
            deadline: WRITE_DEADLINE,
        }
    }
}

/// What one write run in a savepoint did to the batch.
pub(crate) enum Step {
    /// Done: its changes stay.
    Keep,
    /// Refused (a business rule, a unique key, a bug, a row held elsewhere): its changes are
    /// undone, the batch goes on.
    Undo,
    /// The transaction itself failed (disk full, I/O error, busy): the batch cannot commit.
    Abort(StoreError),
}

/// Runs the consecutive [`Shared`] writes of one kind (all of `jobs`) together.
type RunShared =
    for<'a> fn(&'a mut dyn Conn, &'a mut [Box<dyn Job>]) -> BoxFuture<'a, Result<(), StoreError>>;

/// A queued write with its result type erased, so one batch can hold writes of every kind.
pub(crate) trait Job: Send {
    /// For a [`Shared`] write: its kind and how writes of that kind run together.
    fn shared(&self) -> Option<(WriteKind, RunShared)>;
    /// Runs a lone write in the batch's transaction.
    fn run<'a>(&'a mut self, conn: &'a mut dyn Conn) -> BoxFuture<'a, Step>;
    /// Its result, when its run was undone as a whole (a bug in a shared run).
    fn fail(&mut self, error: StoreError);
    /// Answers the caller: the work's own result once the batch committed, else the batch's
    /// failure.
    fn answer(self: Box<Self>, batch: Result<(), &StoreError>);
    /// The rows it will lock (none for a lone write: it waits for what it needs).
    fn rows(&self) -> Vec<Row>;
    /// Where its answer goes, and since when and until when it may start.
    fn waiting(&self) -> &dyn Waiting;
    /// Its caller has stopped waiting (answered by a timeout, or disconnected): starting it
    /// now would carry out a write its caller was told did not happen.
    fn gone(&self) -> bool {
        self.waiting().gone()
    }
    /// When it arrived.
    fn queued_at(&self) -> Instant {
        self.waiting().queued_at()
    }
    /// The instant after which it may not start.
    fn deadline(&self) -> Instant {
        self.waiting().deadline()
    }
    /// The span of the request that queued it, for the batch's span to link to.
    fn trace(&self) -> Option<&SpanContext> {
        self.waiting().trace()
    }
    fn as_any(&mut self) -> &mut dyn Any;
}

/// Where a write's answer goes once its batch is over.
pub(crate) struct Reply<R> {
    result: Option<R>,
    to: oneshot::Sender<R>,
    queued_at: Instant,
    deadline: Instant,
    trace: Option<SpanContext>,
    /// Its place in the queue's count, given back when the write is answered or dropped.
    _slot: Slot,
}

impl<R> Reply<R> {
    pub fn new(to: oneshot::Sender<R>, deadline: Duration, slot: Slot) -> Self {
        let queued_at = Instant::now();
        Reply {
            result: None,
            to,
            queued_at,
            deadline: queued_at + deadline,
            trace: crate::trace::current_span_context(),
            _slot: slot,
        }
    }

    fn send(self, batch: Result<(), &StoreError>, failed: impl FnOnce(StoreError) -> R) {
        let result = match (batch, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(error), _) => failed(copy(error)),
            (Ok(()), None) => failed(StoreError::new(Fault::Bug, "a batch skipped a write")),
        };
        // The caller may have gone since the last look before the commit; the write stands.
        let _ = self.to.send(result);
    }
}

/// A queued write's reply, whatever its result type.
pub(crate) trait Waiting: Send {
    fn gone(&self) -> bool;
    fn queued_at(&self) -> Instant;
    fn deadline(&self) -> Instant;
    fn trace(&self) -> Option<&SpanContext>;
}

impl<R: Send> Waiting for Reply<R> {
    fn gone(&self) -> bool {
        self.to.is_closed()
    }

    fn queued_at(&self) -> Instant {
        self.queued_at
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn trace(&self) -> Option<&SpanContext> {
        self.trace.as_ref()
    }
}

/// A write of its own: any closure over a connection.
pub(crate) struct Lone<T, E, F> {
    pub work: F,
    pub reply: Reply<Result<T, E>>,
}

impl<T, E, F> Job for Lone<T, E, F>
where
    T: Send + 'static,
    E: From<StoreError> + StoreFault + Send + 'static,
    F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
{
    fn shared(&self) -> Option<(WriteKind, RunShared)> {
        None
    }

    fn run<'a>(&'a mut self, conn: &'a mut dyn Conn) -> BoxFuture<'a, Step> {
        Box::pin(async move {
            // A panic must not take the committer (and every later write) with it.
            let result = AssertUnwindSafe(async { (self.work)(conn).await })
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(StoreError::new(Fault::Bug, "a write panicked").into()));
            let step = step(&result);
            self.reply.result = Some(result);
            step
        })
    }

    fn fail(&mut self, error: StoreError) {
        self.reply.result = Some(Err(error.into()));
    }

    fn answer(self: Box<Self>, batch: Result<(), &StoreError>) {
        self.reply.send(batch, |e| Err(e.into()));
    }

    fn rows(&self) -> Vec<Row> {
        Vec::new()
    }

    fn waiting(&self) -> &dyn Waiting {
        &self.reply
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// A write that runs set-based with the others of its kind.
pub(crate) struct Together<W: Shared> {
    pub item: W,
    pub reply: Reply<SharedOutcome<W>>,
}

impl<W: Shared> Job for Together<W> {
    fn shared(&self) -> Option<(WriteKind, RunShared)> {
        Some((W::KIND, run_together::<W>))
    }

    fn run<'a>(&'a mut self, _conn: &'a mut dyn Conn) -> BoxFuture<'a, Step> {
        // Shared writes always run through `run_together`.
        Box::pin(async { Step::Abort(StoreError::new(Fault::Bug, "a shared write ran alone")) })
    }

    fn fail(&mut self, error: StoreError) {
        self.reply.result = Some(failed::<W>(error));
    }

    fn answer(self: Box<Self>, batch: Result<(), &StoreError>) {
        self.reply.send(batch, failed::<W>);
    }

    fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        self.item.rows(&mut rows);
        rows
    }

    fn waiting(&self) -> &dyn Waiting {
        &self.reply
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

fn run_together<'a, W: Shared>(
    conn: &'a mut dyn Conn,
    jobs: &'a mut [Box<dyn Job>],
) -> BoxFuture<'a, Result<(), StoreError>> {
    Box::pin(async move {
        let mut writes: Vec<&mut Together<W>> = jobs
            .iter_mut()
            .filter_map(|job| job.as_any().downcast_mut::<Together<W>>())
            .collect();
        let items: Vec<&W> = writes.iter().map(|w| &w.item).collect();
        let outputs = AssertUnwindSafe(crate::idempotency::run_keyed(conn, &items))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(StoreError::new(Fault::Bug, "a shared write panicked")))?;
        if outputs.len() != writes.len() {
            return Err(StoreError::new(Fault::Bug, "a shared run lost a write"));
        }
        for (write, output) in writes.iter_mut().zip(outputs) {
            write.reply.result = Some(output);
        }
        Ok(())
    })
}

/// What the caller of a shared write hears when its batch failed.
pub(crate) fn failed<W: Shared>(error: StoreError) -> SharedOutcome<W> {
    Outcome::Fresh(Err(error.into()))
}

/// What a write run alone in a savepoint does to the batch: a refusal, a unique key, a bug and
/// a row held by another session past the lock timeout (so the other writes do not wait for
/// it; its caller hears 503 and it is not carried out) undo it alone; any other storage
/// failure fails the transaction.
pub(crate) fn step<T, E: StoreFault>(result: &Result<T, E>) -> Step {
    match result.as_ref().err().map(StoreFault::store_error) {
        None => Step::Keep,
        Some(None) => Step::Undo,
        Some(Some(error)) => match error.fault() {
            Fault::UniqueViolation | Fault::Bug | Fault::LockHeld => Step::Undo,
            _ => Step::Abort(copy(error)),
        },
    }
}

/// Closes the savepoint a write ran in as its `result` says (see [`step`]): kept, undone
/// alone, or `Err`, failing the batch. For shared kinds whose writes run one after another,
/// each in a savepoint (cancellations).
pub async fn close_savepoint<T, E: StoreFault>(
    conn: &mut dyn Conn,
    result: &Result<T, E>,
) -> Result<(), StoreError> {
    match step(result) {
        Step::Keep => conn.release_savepoint().await,
        Step::Undo => conn.rollback_to_savepoint().await,
        Step::Abort(error) => Err(error),
    }
}

/// The same failure for each write of a failed batch.
pub(crate) fn copy(error: &StoreError) -> StoreError {
    StoreError::new(error.fault(), error.to_string())
}

/// Every write of the batch: the shared writes of each kind together, kinds in lock order, then
/// the others each in a savepoint of its own; arrival order within each. (The writes of one
/// batch were all in flight at once, so none of them can depend on another's answer.)
pub(crate) async fn run_batch(
    conn: &mut dyn Conn,
    jobs: &mut [Box<dyn Job>],
) -> Result<(), StoreError> {
    // Lone writes last (`None` sorts first, hence the flag).
    jobs.sort_by_key(|job| {
        let kind = job.shared().map(|(kind, _)| kind);
        (kind.is_none(), kind)
    });
    let mut start = 0;
    while start < jobs.len() {
        let Some((kind, run)) = jobs[start].shared() else {
            run_lone(conn, &mut *jobs[start]).await?;
            start += 1;
            continue;
        };
        let end = start
            + jobs[start..]
                .iter()
                .take_while(|job| job.shared().is_some_and(|(k, _)| k == kind))
                .count();
        let run_of = &mut jobs[start..end];
        conn.savepoint().await?;
        match run(conn, run_of).await {
            Ok(()) => conn.release_savepoint().await?,
            // A bug or a unique key the decisions missed: this run is undone and refused, the
            // rest of the batch goes on.
            Err(error) if matches!(error.fault(), Fault::Bug | Fault::UniqueViolation) => {
                conn.rollback_to_savepoint().await?;
                tracing::error!(%error, "a shared write run failed");
                for job in run_of {
                    job.fail(copy(&error));
                }
            }
            Err(error) => return Err(error),
        }
        start = end;
    }
    Ok(())
}

async fn run_lone(conn: &mut dyn Conn, job: &mut dyn Job) -> Result<(), StoreError> {
    conn.savepoint().await?;
    match job.run(conn).await {
        Step::Keep => conn.release_savepoint().await,
        Step::Undo => conn.rollback_to_savepoint().await,
        Step::Abort(error) => Err(error),
    }
}
