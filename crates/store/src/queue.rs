//! What the committers know about their queue: how many writes wait (so the queue stays within
//! what can commit before the writes' deadline) and whether batches still finish (readiness).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Writes waiting while no batch finishes for this long mean the database is not taking them:
/// readiness turns 503 and new writes are refused at once. Longer than any healthy batch.
const STALL: Duration = Duration::from_secs(2);

/// What a batch costs before one has been measured: a fixed part (begin, commit, the disk's
/// flush) and a part per write. Rough guesses of this machine's SQLite; measured ones replace
/// them within a few batches.
const FIRST_FIXED: Duration = Duration::from_millis(5);
const FIRST_PER_WRITE: Duration = Duration::from_micros(100);

/// Batches this small tell the fixed cost; this big, the cost per write.
const SMALL_BATCH: usize = 4;
const BIG_BATCH: usize = 16;

/// The queue's count and clocks, shared by the committers and every writer.
#[derive(Debug)]
pub(crate) struct Watch {
    epoch: Instant,
    /// Writes admitted and not yet answered or dropped.
    pending: AtomicUsize,
    /// Of those, the ones set aside behind a held row: they wait for a row, not for a batch.
    parked: AtomicUsize,
    /// When a batch last finished, or writes began to wait after an idle spell (µs since epoch).
    progress_at: AtomicU64,
    /// What a batch costs whatever its size, a moving average (µs).
    fixed_micros: AtomicU64,
    /// What each write adds to a batch, a moving average (ns).
    per_write_nanos: AtomicU64,
    /// Most writes in one batch.
    max_batch: usize,
    /// Writes one round of committers takes: the most batches take at once.
    per_round: usize,
    deadline: Duration,
}

impl Watch {
    pub fn new(max_batch: usize, committers: usize, deadline: Duration) -> Arc<Watch> {
        Arc::new(Watch {
            epoch: Instant::now(),
            pending: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            progress_at: AtomicU64::new(0),
            fixed_micros: AtomicU64::new(FIRST_FIXED.as_micros() as u64),
            per_write_nanos: AtomicU64::new(FIRST_PER_WRITE.as_nanos() as u64),
            max_batch,
            per_round: max_batch * committers,
            deadline,
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// A place in the queue, or `None` when more writes wait than can commit before the
    /// deadline (or batches have stopped finishing): the caller answers 503 at once rather
    /// than after the whole deadline.
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        if self.waiting() >= self.bound() {
            return None;
        }
        if self.pending.fetch_add(1, Ordering::Relaxed) == 0 {
            // Waiting starts now; an idle spell is not a stall.
            self.progress_at.store(self.now(), Ordering::Relaxed);
        }
        Some(Slot(self.clone()))
    }

    /// How many writes may wait: what the committers can commit within the deadline in full
    /// batches at the measured cost, or one round while they are stalled. A waiting queue is
    /// what fills batches, so full ones are the right measure even when the shop is quiet and
    /// batches are small: a rush arriving then is admitted, not refused for the quiet's pace.
    fn bound(&self) -> usize {
        if self.stalled() {
            return self.per_round;
        }
        let fixed = self.fixed_micros.load(Ordering::Relaxed) * 1000;
        let per_write = self.per_write_nanos.load(Ordering::Relaxed);
        let full_batch = (fixed + per_write * self.max_batch as u64).max(1);
        let rounds = self.deadline.as_nanos() as u64 / full_batch;
        (self.per_round as u64 * rounds).clamp(2 * self.per_round as u64, 1 << 20) as usize
    }

    /// A batch of `writes` finished after `took`; `committed`: it stored its writes, which is
    /// progress (a batch failing at its deadline again and again is not). Small batches update
    /// the fixed cost, big ones the cost per write (what is left after the fixed cost).
    pub fn finished(&self, took: Duration, writes: usize, committed: bool) {
        if committed {
            self.progress_at.store(self.now(), Ordering::Relaxed);
        }
        let average = |old: u64, sample: u64| (old * 7 + sample) / 8;
        if writes <= SMALL_BATCH {
            let old = self.fixed_micros.load(Ordering::Relaxed);
            let sample = took.as_micros() as u64;
            self.fixed_micros
                .store(average(old, sample), Ordering::Relaxed);
        } else if writes >= BIG_BATCH {
            let fixed = self.fixed_micros.load(Ordering::Relaxed) * 1000;
            let sample = (took.as_nanos() as u64).saturating_sub(fixed) / writes as u64;
            let old = self.per_write_nanos.load(Ordering::Relaxed);
            self.per_write_nanos
                .store(average(old, sample), Ordering::Relaxed);
        }
    }

    /// Writes waiting for a batch, and how many may wait (for the metrics endpoint).
    pub fn load(&self) -> (usize, usize) {
        (self.waiting(), self.bound())
    }

    /// Writes waiting for a batch (not for a held row).
    fn waiting(&self) -> usize {
        let parked = self.parked.load(Ordering::Relaxed);
        self.pending.load(Ordering::Relaxed).saturating_sub(parked)
    }

    /// Writes wait for a batch and none has finished for [`STALL`].
    pub fn stalled(&self) -> bool {
        let since = self
            .now()
            .saturating_sub(self.progress_at.load(Ordering::Relaxed));
        self.waiting() > 0 && since > STALL.as_micros() as u64
    }

    pub(crate) fn set_parked(&self, parked: usize) {
        self.parked.store(parked, Ordering::Relaxed);
    }
}

/// An admitted write's place in the queue, given back when the write is dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Watch>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_holds_what_commits_within_the_deadline() {
        let watch = Watch::new(1024, 1, Duration::from_secs(5));
        // Guessed: 5 ms + 1024 × 100 µs = 107.4 ms a full batch, 46 of them in 5 s.
        assert_eq!(watch.bound(), 1024 * 46);
        for _ in 0..64 {
            // A quiet shop: one write a batch, 2 ms each.
            watch.finished(Duration::from_millis(2), 1, true);
        }
        for _ in 0..64 {
            // A rush: 512 writes in 2 + 512 × 0.3 ms.
            watch.finished(Duration::from_micros(2_000 + 512 * 300), 512, true);
        }
        // About 2 + 1024 × 0.3 = 309 ms a full batch: about 16 of them.
        assert!(
            (1024 * 15..=1024 * 17).contains(&watch.bound()),
            "{}",
            watch.bound()
        );
    }

    #[test]
    fn quiet_small_batches_do_not_shrink_the_queue_for_the_next_rush() {
        let watch = Watch::new(1024, 1, Duration::from_secs(5));
        let before = watch.bound();
        for _ in 0..64 {
            watch.finished(Duration::from_millis(5), 1, true);
        }
        assert_eq!(
            watch.bound(),
            before,
            "one write at 5 ms a batch is the fixed cost"
        );
    }

    #[test]
    fn a_full_queue_refuses_and_a_slot_is_given_back_when_dropped() {
        let watch = Watch::new(1, 1, Duration::from_millis(20));
        // 20 ms / 5.1 ms = 3 rounds of 1.
        let slots: Vec<Slot> = (0..3).map(|_| watch.admit().expect("room")).collect();
        assert!(watch.admit().is_none(), "a fourth write is refused");
        drop(slots);
        assert!(watch.admit().is_some());
    }

    #[test]
    fn the_queue_holds_two_rounds_at_least() {
        let watch = Watch::new(1, 1, Duration::from_millis(5));
        let slots: Vec<Slot> = (0..2).map(|_| watch.admit().expect("room")).collect();
        assert!(watch.admit().is_none(), "a third write is refused");
        drop(slots);
        assert!(watch.admit().is_some());
    }
}
