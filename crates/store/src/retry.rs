//! The retry policy for transient storage failures: jittered exponential backoff within one
//! total deadline, so a request never waits on the database for longer than that.

use rand::Rng;
use std::time::Duration;

/// How long a write may spend on the database in all, retries and waiting for a connection
/// included, before it is answered 503.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(5);

/// Exponential backoff with full jitter: a random pause below 2^tries ms, at most 64 ms.
pub(crate) fn backoff(tries: u32) -> Duration {
    let ceiling_micros = (1u64 << tries.min(6)) * 1000;
    Duration::from_micros(rand::rng().random_range(0..ceiling_micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_and_capped() {
        for tries in 1..20 {
            assert!(backoff(tries) < Duration::from_millis(64));
        }
        let pauses: std::collections::HashSet<_> = (0..20).map(|_| backoff(6)).collect();
        assert!(pauses.len() > 1, "backoff is not jittered");
    }
}
