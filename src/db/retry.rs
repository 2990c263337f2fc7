//! The retry policy for transient database failures.

use rand::Rng;
use std::time::Duration;

/// How many times a transaction runs before a transient failure reaches the caller.
pub(super) const MAX_ATTEMPTS: u32 = 6;

/// Errors that can say whether a retry may succeed.
pub trait Transient {
    fn is_transient(&self) -> bool;
}

impl Transient for super::DbError {
    fn is_transient(&self) -> bool {
        super::DbError::is_transient(self)
    }
}

/// Whether attempt number `tries` (from 1) that failed with `error` should run again.
pub(super) fn again(error: &impl Transient, tries: u32) -> bool {
    error.is_transient() && tries < MAX_ATTEMPTS
}

/// Exponential backoff with full jitter: a random pause below 2^tries ms, at most 64 ms.
pub(super) fn backoff(tries: u32) -> Duration {
    let ceiling_micros = (1u64 << tries.min(6)) * 1000;
    Duration::from_micros(rand::rng().random_range(0..ceiling_micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky(bool);
    impl Transient for Flaky {
        fn is_transient(&self) -> bool {
            self.0
        }
    }

    #[test]
    fn transient_failures_are_retried_a_bounded_number_of_times() {
        let retried = (1..=10)
            .take_while(|tries| again(&Flaky(true), *tries))
            .count() as u32;
        assert_eq!(retried, MAX_ATTEMPTS - 1);
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        assert!(!again(&Flaky(false), 1));
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
