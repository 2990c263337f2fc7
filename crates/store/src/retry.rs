//! The retry policy for transient storage failures: jittered exponential backoff within one
//! total deadline, so a request never waits on the database for longer than that.

use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;

/// How long a write may spend on the database in all, retries and waiting for a connection
/// included, before it is answered 503.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(5);

/// When the current write must be over, and how many attempts it has made.
#[derive(Debug)]
pub(crate) struct Deadline {
    until: Instant,
    tries: u32,
}

impl Deadline {
    pub fn start(budget: Duration) -> Self {
        Self {
            until: Instant::now() + budget,
            tries: 1,
        }
    }

    /// Time left for waiting on a connection or a statement.
    pub fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    /// The pause before the next attempt, or `None` when the deadline does not allow one.
    pub fn next_pause(&mut self) -> Option<Duration> {
        let pause = backoff(self.tries);
        if pause >= self.remaining() {
            return None;
        }
        self.tries += 1;
        Some(pause)
    }
}

/// Exponential backoff with full jitter: a random pause below 2^tries ms, at most 64 ms.
pub(crate) fn backoff(tries: u32) -> Duration {
    let ceiling_micros = (1u64 << tries.min(6)) * 1000;
    Duration::from_micros(rand::rng().random_range(0..ceiling_micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_deadline() {
        let mut deadline = Deadline::start(Duration::from_millis(300));
        let mut waited = Duration::ZERO;
        while let Some(pause) = deadline.next_pause() {
            tokio::time::sleep(pause).await;
            waited += pause;
        }
        assert!(waited <= Duration::from_millis(300));
        assert!(deadline.tries > 3, "retried only {} times", deadline.tries);
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        for tries in 1..20 {
            assert!(backoff(tries) < Duration::from_millis(64));
        }
        let pauses: std::collections::HashSet<_> = (0..20).map(|_| backoff(6)).collect();
        assert!(pauses.len() > 1, "backoff is not jittered");
    }
}
