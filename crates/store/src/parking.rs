//! The writes set aside because a row they need is held by another session: they rejoin a
//! batch once the row is free, or are answered 503 at their deadline without having started.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::Job;
use crate::queue::Watch;
use crate::Row;

/// How often the rows of set-aside writes are looked at again.
pub(crate) const LOOK_AGAIN: Duration = Duration::from_millis(100);

/// Writes set aside because another session holds a row they need, oldest first, and the rows
/// found held. They rejoin a batch once the row is free, or are answered 503 at their deadline
/// without having started.
pub(crate) struct Parking {
    jobs: VecDeque<Box<dyn Job>>,
    held: HashSet<Row>,
    looked_at: Instant,
    watch: Arc<Watch>,
}

impl Parking {
    pub fn new(watch: Arc<Watch>) -> Parking {
        Parking {
            jobs: VecDeque::new(),
            held: HashSet::new(),
            looked_at: Instant::now(),
            watch,
        }
    }

    /// When the set-aside writes are due another look, if there are any.
    pub fn next_look(&self) -> Option<Instant> {
        (!self.jobs.is_empty()).then_some(self.looked_at + LOOK_AGAIN)
    }

    pub fn due(&self) -> bool {
        self.looked_at.elapsed() >= LOOK_AGAIN
    }

    /// Every set-aside write, to be sorted again.
    pub fn take(&mut self) -> Vec<Box<dyn Job>> {
        let jobs: Vec<_> = self.jobs.drain(..).collect();
        self.watch.set_parked(0);
        jobs
    }

    /// Whether another session holds a row `job` needs, as far as known. Nothing is held
    /// almost always: then the job's rows are not even listed (this runs for every write).
    pub fn blocks(&self, job: &dyn Job) -> bool {
        !self.held.is_empty() && job.rows().iter().any(|r| self.held.contains(r))
    }

    /// The rows held as far as known, among those `jobs` need.
    pub fn held_among(&self, jobs: &[Box<dyn Job>]) -> Vec<Row> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let mut rows: Vec<Row> = jobs
            .iter()
            .flat_map(|j| j.rows())
            .filter(|r| self.held.contains(r))
            .collect();
        rows.sort_unstable();
        rows.dedup();
        rows
    }

    /// The rows a look found held (replacing what was known of `looked`).
    pub fn update(&mut self, looked: &[Row], held: Vec<Row>) {
        for row in looked {
            self.held.remove(row);
        }
        self.held.extend(held);
        self.looked_at = Instant::now();
    }

    /// Sets `job` aside, after the ones already there (it arrived later).
    pub fn park(&mut self, job: Box<dyn Job>) {
        self.jobs.push_back(job);
        self.watch.set_parked(self.jobs.len());
    }

    /// Forgets held rows no set-aside write needs: a later batch that meets one finds it again.
    pub fn forget_unneeded(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let needed: HashSet<Row> = self.jobs.iter().flat_map(|j| j.rows()).collect();
        self.held.retain(|r| needed.contains(r));
    }
}
