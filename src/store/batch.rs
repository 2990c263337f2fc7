//! Group commit: the concurrent writes of this instance share one transaction and one durable
//! commit.
//!
//! With a transaction per request a rush waits for commits one at a time: SQLite has one writer
//! and an fsync per commit, and on PostgreSQL a hot row stays locked from a request's update to
//! its commit. Here writes queue in arrival order; a committer takes what is waiting (up to a
//! bound, [`DEFAULT_MAX_BATCH`] unless set) and runs it in one transaction in that order, commits
//! once, and only then answers them all. A lone write is committed at once.
//!
//! A batch holds two kinds of work:
//! - a [`Shared`] write (an order, a coupon issue) runs set-based together with the writes of
//!   its kind next to it: one statement per table for all of them, the business rules decided
//!   in Rust over the locked rows, a refusal simply writing nothing;
//! - any other write runs alone in a savepoint, so its refusal is undone alone.
//!
//! When the batch cannot commit, no write of it is answered with success: transient failures
//! run the whole batch again (within the write deadline), the others reach every write of it.

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::{Database, Executor, Pool};
use std::any::{Any, TypeId};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{retrying, Conn, Fault, StoreError, StoreFault};

/// Most writes in one transaction unless set (`COMMERCE_WRITE_BATCH`): enough to spread a
/// commit over a rush, few enough that a batch holds its locks for milliseconds.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// How writes are grouped into commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Most writes per transaction (1: a commit for each).
    pub max_batch: usize,
    /// Committers working the queue at once on PostgreSQL; SQLite has one writer, so one.
    pub committers: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            max_batch: DEFAULT_MAX_BATCH,
            committers: DEFAULT_COMMITTERS,
        }
    }
}

/// Committers on PostgreSQL unless set (`COMMERCE_WRITE_COMMITTERS`). With more than one, a
/// batch is decided while the one before waits for its commit; on the 2-core machine measured,
/// where commits are cheap, a second one gained nothing, so one it is.
pub const DEFAULT_COMMITTERS: usize = 1;

/// Writes of one kind that run together, set-based. `run_all` sees every such write of a batch
/// in arrival order, inside the batch's transaction: it locks the rows they need (in the global
/// order of the schema: products, then user coupons, then balances, then coupon campaigns, so
/// two batches never deadlock), decides each write in turn against the locked state, and
/// writes the effect of all of them with a few statements.
#[async_trait]
pub trait Shared: Send + Sync + Sized + 'static {
    type Output: Send + 'static;

    /// Where this kind's locks come in the schema's order: a batch runs its kinds in this
    /// order (orders 0, coupon issues 1), so its locks follow it whatever the arrival order.
    const LOCK_ORDER: u8;

    /// One output per item, in order. `Err` fails the whole batch (a storage failure).
    async fn run_all(conn: &mut dyn Conn, items: &[&Self])
        -> Result<Vec<Self::Output>, StoreError>;

    /// What the caller hears when the batch failed.
    fn failed(error: StoreError) -> Self::Output;
}

/// What one lone write did to the batch.
enum Step {
    /// Done: its changes stay.
    Keep,
    /// Refused (a business rule, a unique key, a bug): its changes are undone, the batch goes on.
    Undo,
    /// The transaction itself failed (disk full, I/O error, busy): the batch cannot commit.
    Abort(StoreError),
}

/// Runs the consecutive [`Shared`] writes of one kind (all of `jobs`) together.
type RunShared =
    for<'a> fn(&'a mut dyn Conn, &'a mut [Box<dyn Job>]) -> BoxFuture<'a, Result<(), StoreError>>;

/// A queued write with its result type erased, so one batch can hold writes of every kind.
trait Job: Send {
    /// For a [`Shared`] write: its kind and how writes of that kind run together.
    fn shared(&self) -> Option<(u8, TypeId, RunShared)>;
    /// Runs a lone write in the batch's transaction.
    fn run<'a>(&'a mut self, conn: &'a mut dyn Conn) -> BoxFuture<'a, Step>;
    /// Its result, when its run was undone as a whole (a bug in a shared run).
    fn fail(&mut self, error: StoreError);
    /// Answers the caller: the work's own result once the batch committed, else the batch's
    /// failure.
    fn answer(self: Box<Self>, batch: Result<(), &StoreError>);
    fn queued_at(&self) -> Instant;
    fn as_any(&mut self) -> &mut dyn Any;
}

/// Where a write's answer goes once its batch is over.
struct Reply<R> {
    result: Option<R>,
    to: oneshot::Sender<R>,
    queued_at: Instant,
}

impl<R> Reply<R> {
    fn new(to: oneshot::Sender<R>) -> Self {
        Reply {
            result: None,
            to,
            queued_at: Instant::now(),
        }
    }

    fn send(self, batch: Result<(), &StoreError>, failed: impl FnOnce(StoreError) -> R) {
        let result = match (batch, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(error), _) => failed(copy(error)),
            (Ok(()), None) => failed(StoreError::new(Fault::Bug, "a batch skipped a write")),
        };
        // The caller may have gone (its request timed out); the write stands all the same.
        let _ = self.to.send(result);
    }
}

/// A write of its own: any closure over a connection.
struct Lone<T, E, F> {
    work: F,
    reply: Reply<Result<T, E>>,
}

impl<T, E, F> Job for Lone<T, E, F>
where
    T: Send + 'static,
    E: From<StoreError> + StoreFault + Send + 'static,
    F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
{
    fn shared(&self) -> Option<(u8, TypeId, RunShared)> {
        None
    }

    fn run<'a>(&'a mut self, conn: &'a mut dyn Conn) -> BoxFuture<'a, Step> {
        Box::pin(async move {
            // A panic must not take the committer (and every later write) with it.
            let result = AssertUnwindSafe(async { (self.work)(conn).await })
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(StoreError::new(Fault::Bug, "a write panicked").into()));
            let step = match result.as_ref().err().map(StoreFault::store_error) {
                None => Step::Keep,
                Some(None) => Step::Undo,
                Some(Some(error)) => match error.fault() {
                    Fault::UniqueViolation | Fault::Bug => Step::Undo,
                    fault => Step::Abort(StoreError::new(fault, error.to_string())),
                },
            };
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

    fn queued_at(&self) -> Instant {
        self.reply.queued_at
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// A write that runs set-based with the others of its kind.
struct Together<W: Shared> {
    item: W,
    reply: Reply<W::Output>,
}

impl<W: Shared> Job for Together<W> {
    fn shared(&self) -> Option<(u8, TypeId, RunShared)> {
        Some((W::LOCK_ORDER, TypeId::of::<W>(), run_together::<W>))
    }

    fn run<'a>(&'a mut self, _conn: &'a mut dyn Conn) -> BoxFuture<'a, Step> {
        // Shared writes always run through `run_together`.
        Box::pin(async { Step::Abort(StoreError::new(Fault::Bug, "a shared write ran alone")) })
    }

    fn fail(&mut self, error: StoreError) {
        self.reply.result = Some(W::failed(error));
    }

    fn answer(self: Box<Self>, batch: Result<(), &StoreError>) {
        self.reply.send(batch, W::failed);
    }

    fn queued_at(&self) -> Instant {
        self.reply.queued_at
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
        let outputs = AssertUnwindSafe(W::run_all(conn, &items))
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

/// The same failure for each write of a failed batch.
fn copy(error: &StoreError) -> StoreError {
    StoreError::new(error.fault(), error.to_string())
}

/// The queue of this instance's batched writes; its committers commit them in batches.
#[derive(Clone, Debug)]
pub struct Committer(mpsc::UnboundedSender<Box<dyn Job>>);

impl Committer {
    /// Starts `batching.committers` committers on `pool`, each opening its transactions with
    /// `begin`. They stop when the last handle to the queue is dropped.
    pub fn start<DB>(
        pool: Pool<DB>,
        begin: &'static str,
        writes_failing: Arc<AtomicBool>,
        batching: Batching,
    ) -> Committer
    where
        DB: Database,
        DB::Connection: Conn,
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    {
        let (queue, waiting) = mpsc::unbounded_channel();
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..batching.committers.max(1) {
            tokio::spawn(commit_batches(
                pool.clone(),
                begin,
                writes_failing.clone(),
                batching.max_batch.max(1),
                waiting.clone(),
            ));
        }
        Committer(queue)
    }

    /// Queues `work` to run alone (in a savepoint) and waits until its batch committed.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + StoreFault + Send + 'static,
        F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        let (to, answer) = oneshot::channel();
        let job = Lone {
            work,
            reply: Reply::new(to),
        };
        self.queue(Box::new(job), answer, |e| Err(e.into())).await
    }

    /// Queues `item` to run with the writes of its kind and waits until its batch committed.
    pub async fn write_shared<W: Shared>(&self, item: W) -> W::Output {
        let (to, answer) = oneshot::channel();
        let job = Together {
            item,
            reply: Reply::new(to),
        };
        self.queue(Box::new(job), answer, W::failed).await
    }

    async fn queue<R>(
        &self,
        job: Box<dyn Job>,
        answer: oneshot::Receiver<R>,
        failed: fn(StoreError) -> R,
    ) -> R {
        if self.0.send(job).is_err() {
            return failed(StoreError::new(
                Fault::Unavailable,
                "the database writer has stopped",
            ));
        }
        answer.await.unwrap_or_else(|_| {
            failed(StoreError::new(
                Fault::Bug,
                "the database writer dropped a write",
            ))
        })
    }
}

async fn commit_batches<DB>(
    pool: Pool<DB>,
    begin: &'static str,
    writes_failing: Arc<AtomicBool>,
    max_batch: usize,
    waiting: Arc<Mutex<mpsc::UnboundedReceiver<Box<dyn Job>>>>,
) where
    DB: Database,
    DB::Connection: Conn,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    loop {
        // The queue stays this committer's from taking the batch until the batch has run (its
        // rows locked and its decisions made): so batches decide in arrival order even with
        // several committers, and only the commits overlap. One write per batch is the plain
        // transaction-per-write model: its committers run side by side, the database's lock
        // queues ordering them.
        let mut turn = waiting.clone().lock_owned().await;
        let Some(jobs) = take_batch(&mut turn, max_batch).await else {
            return;
        };
        let turn = Arc::new(std::sync::Mutex::new((max_batch > 1).then_some(turn)));
        metrics::histogram!("db_write_batch_size").record(jobs.len() as f64);
        for job in &jobs {
            metrics::histogram!("db_write_queue_seconds")
                .record(job.queued_at().elapsed().as_secs_f64());
        }
        let batch = Arc::new(Mutex::new(jobs));
        let outcome: Result<(), StoreError> = retrying(&pool, begin, &writes_failing, |conn| {
            let (batch, turn) = (batch.clone(), turn.clone());
            Box::pin(async move {
                let ran = run_batch(conn, &mut batch.lock().await[..]).await;
                drop(turn.lock().expect("turn lock").take());
                ran
            })
        })
        .await;
        metrics::counter!("db_write_batches_total").increment(1);
        let jobs = std::mem::take(&mut *batch.lock().await);
        for job in jobs {
            job.answer(outcome.as_ref().map(|_| ()));
        }
    }
}

/// What is waiting, in arrival order, up to `max_batch`; `None` once the queue is closed.
async fn take_batch(
    waiting: &mut mpsc::UnboundedReceiver<Box<dyn Job>>,
    max_batch: usize,
) -> Option<Vec<Box<dyn Job>>> {
    let mut jobs = vec![waiting.recv().await?];
    while jobs.len() < max_batch {
        match waiting.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

/// Every write of the batch: the shared writes of each kind together, kinds in lock order, then
/// the others each in a savepoint of its own; arrival order within each. (The writes of one
/// batch were all in flight at once, so none of them can depend on another's answer.)
async fn run_batch(conn: &mut dyn Conn, jobs: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    jobs.sort_by_key(|job| job.shared().map_or(u8::MAX, |(order, _, _)| order));
    let mut start = 0;
    while start < jobs.len() {
        let Some((_, kind, run)) = jobs[start].shared() else {
            run_lone(conn, &mut *jobs[start]).await?;
            start += 1;
            continue;
        };
        let end = start
            + jobs[start..]
                .iter()
                .take_while(|job| job.shared().is_some_and(|(_, k, _)| k == kind))
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
