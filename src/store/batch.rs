//! Group commit on SQLite: the concurrent writes of this instance share one transaction and
//! one durable commit.
//!
//! SQLite has one writer and makes every commit durable with an fsync, so with a transaction per
//! request a rush waits for fsyncs one at a time. Here writes queue in arrival order; the
//! committer takes what is waiting (up to a bound, [`DEFAULT_MAX_BATCH`] unless set), runs each write's work in a savepoint of
//! one transaction — a rejection is undone alone and the others go on — commits once, and only
//! then answers them all. A lone write is committed at once. When the batch cannot commit, no
//! write of it is answered with success: transient failures run the whole batch again (within
//! the write deadline), the others reach every write of the batch.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{retrying, Conn, Fault, StoreError, StoreFault};

/// Most writes in one transaction unless set (`COMMERCE_WRITE_BATCH`): enough to spread an fsync
/// over a rush, few enough that a batch holds the writer for milliseconds.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// What one write's work did to the batch.
enum Step {
    /// Done: its changes stay.
    Keep,
    /// Refused (a business rule, a unique key, a bug): its changes are undone, the batch goes on.
    Undo,
    /// The transaction itself failed (disk full, I/O error, busy): the batch cannot commit.
    Abort(StoreError),
}

/// A queued write with its result type erased, so one batch can hold writes of every kind.
trait Job: Send {
    fn run<'a>(&'a mut self, conn: &'a mut dyn Conn) -> BoxFuture<'a, Step>;
    /// Answers the caller: the work's own result once the batch committed, else the batch's
    /// failure.
    fn answer(self: Box<Self>, batch: Result<(), &StoreError>);
    fn queued_at(&self) -> Instant;
}

struct Write<T, E, F> {
    work: F,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
    queued_at: Instant,
}

impl<T, E, F> Job for Write<T, E, F>
where
    T: Send + 'static,
    E: From<StoreError> + StoreFault + Send + 'static,
    F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
{
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
            self.result = Some(result);
            step
        })
    }

    fn answer(self: Box<Self>, batch: Result<(), &StoreError>) {
        let result = match (batch, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(error), _) => Err(copy(error).into()),
            (Ok(()), None) => Err(StoreError::new(Fault::Bug, "a batch skipped a write").into()),
        };
        // The caller may have gone (its request timed out); the write stands all the same.
        let _ = self.reply.send(result);
    }

    fn queued_at(&self) -> Instant {
        self.queued_at
    }
}

/// The same failure for each write of a failed batch.
fn copy(error: &StoreError) -> StoreError {
    StoreError::new(error.fault(), error.to_string())
}

/// The queue of this instance's SQLite writes; its task commits them in batches.
#[derive(Clone, Debug)]
pub struct Committer(mpsc::UnboundedSender<Box<dyn Job>>);

impl Committer {
    /// Starts the committer on the one-connection write pool. It stops when the last handle
    /// to it is dropped.
    pub fn start(
        pool: sqlx::SqlitePool,
        writes_failing: Arc<AtomicBool>,
        max_batch: usize,
    ) -> Committer {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(commit_batches(
            pool,
            writes_failing,
            max_batch.max(1),
            waiting,
        ));
        Committer(queue)
    }

    /// Queues `work` and waits until its batch committed (or failed).
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + StoreFault + Send + 'static,
        F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let write = Write {
            work,
            result: None,
            reply,
            queued_at: Instant::now(),
        };
        if self.0.send(Box::new(write)).is_err() {
            return Err(
                StoreError::new(Fault::Unavailable, "the database writer has stopped").into(),
            );
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::new(Fault::Bug, "the database writer dropped a write").into())
        })
    }
}

async fn commit_batches(
    pool: sqlx::SqlitePool,
    writes_failing: Arc<AtomicBool>,
    max_batch: usize,
    mut waiting: mpsc::UnboundedReceiver<Box<dyn Job>>,
) {
    while let Some(first) = waiting.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match waiting.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("db_write_batch_size").record(jobs.len() as f64);
        for job in &jobs {
            metrics::histogram!("db_write_queue_seconds")
                .record(job.queued_at().elapsed().as_secs_f64());
        }
        let batch = Arc::new(Mutex::new(jobs));
        let outcome: Result<(), StoreError> =
            retrying(&pool, "BEGIN IMMEDIATE", &writes_failing, |conn| {
                let batch = batch.clone();
                Box::pin(async move { run_batch(conn, &mut batch.lock().await[..]).await })
            })
            .await;
        metrics::counter!("db_write_batches_total").increment(1);
        let jobs = std::mem::take(&mut *batch.lock().await);
        for job in jobs {
            job.answer(outcome.as_ref().map(|_| ()));
        }
    }
}

/// Every write of the batch in arrival order, each in a savepoint of its own.
async fn run_batch(conn: &mut dyn Conn, jobs: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    for job in jobs {
        conn.savepoint().await?;
        match job.run(conn).await {
            Step::Keep => conn.release_savepoint().await?,
            Step::Undo => conn.rollback_to_savepoint().await?,
            Step::Abort(error) => return Err(error),
        }
    }
    Ok(())
}
