//! The committers: they take the waiting writes in batches (see `batch`), run each batch in one
//! transaction and answer its writes once it committed.
//!
//! Promises kept here, whatever the database does:
//! - a write whose caller has stopped waiting, or whose deadline passed, is never started, and
//!   one whose caller leaves while its batch runs is rolled back with the batch and the batch
//!   runs again without it: a write answered 503 is not carried out later, unless its batch
//!   was already committing (then a retry with its `Idempotency-Key` tells);
//! - the queue holds what can commit within the deadline, and refuses more at once;
//! - a row held by another session (past PostgreSQL's `lock_timeout`) sets aside only the
//!   writes that need it; the rest of the batch runs again at once;
//! - a database that stops answering fails the batch at the writes' deadline, and readiness
//!   says so while writes wait without progress.

use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Mutex as TurnLock, OwnedMutexGuard};
use tracing::Instrument;

use crate::batch::{failed, run_batch, Batching, Job, Lone, Reply, Together};
use crate::parking::Parking;
use crate::queue::Watch;
use crate::retry::backoff;
use crate::source::Source;
use crate::{Conn, Fault, Row, Shared, SharedOutcome, StoreError, StoreFault};

/// How long a probe for held rows may take; past it the rows count as still held.
pub const PROBE_WAIT: Duration = Duration::from_secs(1);

type Queue = mpsc::UnboundedReceiver<Box<dyn Job>>;

/// The queue of this instance's batched writes; its committers commit them in batches.
#[derive(Clone, Debug)]
pub struct Committer {
    queue: mpsc::UnboundedSender<Box<dyn Job>>,
    watch: Arc<Watch>,
    deadline: Duration,
    max_batch: usize,
}

/// How full the queue is, for the metrics endpoint.
#[derive(Clone, Copy, Debug)]
pub struct QueueLoad {
    /// Writes waiting for a batch.
    pub waiting: usize,
    /// Writes admitted before new ones are refused.
    pub capacity: usize,
    /// Most writes in one batch.
    pub max_batch: usize,
}

/// What the committers of one queue share.
struct Line<S> {
    source: S,
    writes_failing: Arc<AtomicBool>,
    max_batch: usize,
    /// The longest a COMMIT may take before its outcome counts as unknown.
    commit_wait: Duration,
    /// The turn to take a batch: held from taking it until its rows are locked and decided.
    waiting: Arc<TurnLock<Queue>>,
    parking: Mutex<Parking>,
    watch: Arc<Watch>,
}

impl Committer {
    /// Starts `batching.committers` committers as tasks on the runtime, taking their
    /// transactions from `source`. They stop when the last handle to the queue is dropped.
    pub fn start<S: Source>(
        source: S,
        writes_failing: Arc<AtomicBool>,
        batching: Batching,
    ) -> Committer {
        let (committer, line) = Committer::new(source, writes_failing, batching);
        for _ in 0..batching.committers.max(1) {
            tokio::spawn(commit_batches(line.clone()));
        }
        committer
    }

    /// Starts one committer on a thread of its own, for a source whose statements run
    /// synchronously (SQLite's): a batch then runs start to end on that thread, no hop per
    /// statement, and never blocks the runtime's workers. The thread is one of the runtime's
    /// (so it records metrics where its other threads do) and drives the committer's timers
    /// and queue through it; it traces where the thread that started it does.
    pub fn start_on_own_thread<S: Source>(
        source: S,
        writes_failing: Arc<AtomicBool>,
        batching: Batching,
    ) -> Committer {
        let batching = Batching {
            committers: 1,
            ..batching
        };
        let (committer, line) = Committer::new(source, writes_failing, batching);
        let runtime = tokio::runtime::Handle::current();
        let tracing = tracing::dispatcher::get_default(Clone::clone);
        tokio::task::spawn_blocking(move || {
            tracing::dispatcher::with_default(&tracing, || runtime.block_on(commit_batches(line)))
        });
        committer
    }

    fn new<S: Source>(
        source: S,
        writes_failing: Arc<AtomicBool>,
        batching: Batching,
    ) -> (Committer, Arc<Line<S>>) {
        let (queue, waiting) = mpsc::unbounded_channel();
        let committers = batching.committers.max(1);
        let max_batch = batching.max_batch.max(1);
        let watch = Watch::new(max_batch, committers, batching.deadline);
        let line = Arc::new(Line {
            source,
            writes_failing,
            max_batch,
            commit_wait: batching.deadline,
            waiting: Arc::new(TurnLock::new(waiting)),
            parking: Mutex::new(Parking::new(watch.clone())),
            watch: watch.clone(),
        });
        // Shown as 0 before the first refusal or retry, so their rates can be graphed and
        // alerted on from the start.
        for reason in ["queue_full", "deadline", "caller_gone"] {
            metrics::counter!("db_writes_not_started_total", "reason" => reason).increment(0);
        }
        metrics::counter!("db_transaction_retries_total").increment(0);
        let committer = Committer {
            queue,
            watch,
            deadline: batching.deadline,
            max_batch,
        };
        (committer, line)
    }

    pub fn load(&self) -> QueueLoad {
        let (waiting, capacity) = self.watch.load();
        QueueLoad {
            waiting,
            capacity,
            max_batch: self.max_batch,
        }
    }

    /// Queues `work` to run alone (in a savepoint) and waits until its batch committed.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + StoreFault + Send + 'static,
        F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        self.queue(|reply| Box::new(Lone { work, reply }), |e| Err(e.into()))
            .await
    }

    /// Queues `item` to run with the writes of its kind and waits until its batch committed.
    pub async fn write_shared<W: Shared>(&self, item: W) -> SharedOutcome<W> {
        self.queue(|reply| Box::new(Together { item, reply }), failed::<W>)
            .await
    }

    /// Writes wait and no batch has finished for a while: the database is not taking them.
    pub fn stalled(&self) -> bool {
        self.watch.stalled()
    }

    async fn queue<R>(
        &self,
        job: impl FnOnce(Reply<R>) -> Box<dyn Job>,
        failed: fn(StoreError) -> R,
    ) -> R {
        let Some(slot) = self.watch.admit() else {
            refused("queue_full");
            return failed(StoreError::new(
                Fault::Unavailable,
                "more writes are waiting than can be stored before their deadline",
            ));
        };
        let (to, answer) = oneshot::channel();
        if self
            .queue
            .send(job(Reply::new(to, self.deadline, slot)))
            .is_err()
        {
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

fn refused(reason: &'static str) {
    metrics::counter!("db_writes_not_started_total", "reason" => reason).increment(1);
}

async fn commit_batches<S: Source>(line: Arc<Line<S>>) {
    loop {
        // The queue stays this committer's from taking the batch until the batch has run (its
        // rows locked and its decisions made): so batches decide in arrival order even with
        // several committers, and only the commits overlap. One write per batch is the plain
        // transaction-per-write model: its committers run side by side, the database's lock
        // queues ordering them.
        let mut turn = line.waiting.clone().lock_owned().await;
        let Some(jobs) = take_batch(&line, &mut turn).await else {
            return;
        };
        metrics::histogram!("db_write_batch_size").record(jobs.len() as f64);
        for job in &jobs {
            metrics::histogram!("db_write_queue_seconds")
                .record(job.queued_at().elapsed().as_secs_f64());
        }
        let started = Instant::now();
        let writes = jobs.len();
        let turn = (line.max_batch > 1).then_some(turn);
        // The batch is a trace of its own, linked to the requests it carries.
        let span = tracing::info_span!("db.batch", writes = jobs.len());
        crate::trace::link(&span, jobs.iter().filter_map(|job| job.trace()));
        let committed = run_to_the_end(&line, jobs, turn).instrument(span).await;
        metrics::counter!("db_write_batches_total").increment(1);
        line.watch.finished(started.elapsed(), writes, committed);
    }
}

/// The next batch: set-aside writes whose rows are free again first (they arrived first), then
/// what waits in the queue, up to `max_batch`; writes that need a held row are set aside.
/// `None` once the queue is closed.
async fn take_batch<S: Source>(line: &Line<S>, queue: &mut Queue) -> Option<Vec<Box<dyn Job>>> {
    loop {
        let look = line.parking.lock().expect("parking").next_look();
        let first = match look {
            None => Some(queue.recv().await?),
            Some(at) => tokio::select! {
                job = queue.recv() => Some(job?),
                () = tokio::time::sleep_until(at.into()) => None,
            },
        };
        let mut candidates = {
            let mut parking = line.parking.lock().expect("parking");
            if parking.due() {
                parking.take()
            } else {
                Vec::new()
            }
        };
        candidates.extend(first);
        while candidates.len() < line.max_batch {
            match queue.try_recv() {
                Ok(job) => candidates.push(job),
                Err(_) => break,
            }
        }
        let candidates = live(candidates);
        // Look again at the held rows these writes need, at most every `LOOK_AGAIN`.
        let looked = {
            let parking = line.parking.lock().expect("parking");
            parking.due().then(|| parking.held_among(&candidates))
        };
        if let Some(rows) = looked.filter(|rows| !rows.is_empty()) {
            let held = probe(line, &rows).await.unwrap_or_else(|| rows.clone());
            line.parking.lock().expect("parking").update(&rows, held);
        }
        let mut parking = line.parking.lock().expect("parking");
        let mut batch = Vec::with_capacity(candidates.len());
        for job in candidates {
            if parking.blocks(&*job) {
                parking.park(job);
            } else {
                batch.push(job);
            }
        }
        parking.forget_unneeded();
        if !batch.is_empty() {
            return Some(batch);
        }
    }
}

/// The writes that may still start: a write whose caller has gone is dropped, one past its
/// deadline is answered 503; neither is ever started.
fn live(jobs: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
    let now = Instant::now();
    let mut kept = Vec::with_capacity(jobs.len());
    for job in jobs {
        if job.gone() {
            refused("caller_gone");
        } else if job.deadline() <= now {
            refused("deadline");
            job.answer(Err(&StoreError::new(
                Fault::Unavailable,
                "the write could not start before its deadline; it was not carried out",
            )));
        } else {
            kept.push(job);
        }
    }
    kept
}

/// Which of `rows` another session holds now; `None` if the database did not say in time.
async fn probe<S: Source>(line: &Line<S>, rows: &[Row]) -> Option<Vec<Row>> {
    match tokio::time::timeout(PROBE_WAIT, line.source.held_rows(rows)).await {
        Ok(Ok(held)) => Some(held),
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not look for held rows");
            None
        }
        Err(_) => None,
    }
}

/// Why an attempt at a batch did not commit.
enum Again {
    /// Some callers left while it ran: it was rolled back, to run again without them.
    CallersLeft,
    Failed(StoreError),
}

/// Runs the batch until it committed or failed, and answers every write of it; whether it
/// committed. `turn` goes once the first attempt has decided.
async fn run_to_the_end<S: Source>(
    line: &Line<S>,
    mut jobs: Vec<Box<dyn Job>>,
    mut turn: Option<OwnedMutexGuard<Queue>>,
) -> bool {
    let mut tries = 1;
    loop {
        jobs = live(jobs);
        let Some(until) = jobs.iter().map(|j| j.deadline()).max() else {
            return false;
        };
        let error = match attempt(line, &mut jobs, until, &mut turn).await {
            Ok(()) => {
                line.writes_failing.store(false, Ordering::Relaxed);
                metrics::counter!("db_commits_total").increment(1);
                for job in jobs {
                    job.answer(Ok(()));
                }
                return true;
            }
            Err(Again::CallersLeft) => continue,
            Err(Again::Failed(error)) => error,
        };
        if error.fault() == Fault::LockHeld {
            let mut rows: Vec<Row> = jobs.iter().flat_map(|j| j.rows()).collect();
            rows.sort_unstable();
            rows.dedup();
            if let Some(held) = probe(line, &rows).await.filter(|h| !h.is_empty()) {
                tracing::warn!(?held, "rows held by another session: their writes wait");
                let mut parking = line.parking.lock().expect("parking");
                parking.update(&rows, held);
                let (blocked, free): (Vec<_>, Vec<_>) =
                    jobs.into_iter().partition(|j| parking.blocks(&**j));
                blocked.into_iter().for_each(|j| parking.park(j));
                jobs = free;
                continue;
            }
        }
        if error.is_transient() {
            let pause = backoff(tries);
            if Instant::now() + pause < until {
                tries += 1;
                metrics::counter!("db_transaction_retries_total").increment(1);
                tokio::time::sleep(pause).await;
                continue;
            }
        }
        if matches!(error.fault(), Fault::Unavailable | Fault::OutcomeUnknown) {
            line.writes_failing.store(true, Ordering::Relaxed);
        }
        for job in jobs {
            job.answer(Err(&error));
        }
        return false;
    }
}

/// One attempt: begin, run the batch, and commit unless a caller left meanwhile. Everything up
/// to `COMMIT` must be done by `until` (the latest deadline of the batch's writes), so a
/// database that stops answering fails the batch instead of holding every write behind it.
async fn attempt<S: Source>(
    line: &Line<S>,
    jobs: &mut [Box<dyn Job>],
    until: Instant,
    turn: &mut Option<OwnedMutexGuard<Queue>>,
) -> Result<(), Again> {
    let wait = until.saturating_duration_since(Instant::now());
    let decide = async {
        let mut tx = line.source.begin(wait).await?;
        run_batch(&mut *tx, jobs).await?;
        Ok::<_, StoreError>(tx)
    };
    let decided = tokio::time::timeout(wait, decide).await;
    // Decided: the next batch may be taken while this one commits.
    drop(turn.take());
    let tx =
        match decided {
            Ok(Ok(tx)) => tx,
            Ok(Err(error)) => return Err(Again::Failed(error)),
            Err(_) => return Err(Again::Failed(StoreError::new(
                Fault::Unavailable,
                "the database did not answer before the writes' deadline; nothing was committed",
            ))),
        };
    if jobs.iter().any(|j| j.gone()) {
        S::rollback(tx).await;
        return Err(Again::CallersLeft);
    }
    // From here a caller who leaves may find the write done: the COMMIT is under way. A slow
    // COMMIT (a loaded disk) is waited for a whole deadline, not what is left of the batch's:
    // cutting it short would answer 503 for a write that then lands. Only a database that
    // stops answering runs past it.
    match tokio::time::timeout(line.commit_wait, S::commit(tx)).await {
        Ok(result) => result.map_err(Again::Failed),
        Err(_) => Err(Again::Failed(StoreError::new(
            Fault::OutcomeUnknown,
            "COMMIT did not return in time",
        ))),
    }
}
