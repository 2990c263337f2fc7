//! The per-user limit on writes: a token bucket per user per instance (`governor`), checked
//! after authentication and before any body parsing, idempotency record or database work.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::auth::{AuthUser, JwtKeys};
use super::problem::{ErrorCode, Problem};
use crate::ids::UserId;

/// How fast one user may write: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteQuota {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

/// Forgetting idle users costs a pass over the map; doing it once per this many checks keeps
/// the map bounded by the users of the last moments at a negligible cost per request.
const CHECKS_PER_SWEEP: u64 = 4096;

/// The buckets, shared by every clone (`WriteUser` takes it from the state with `FromRef`).
#[derive(Clone)]
pub struct WriteLimiter(Arc<Buckets>);

/// `buckets` is `None` when the limit is off.
struct Buckets {
    buckets: Option<DefaultKeyedRateLimiter<UserId>>,
    checks: AtomicU64,
}

impl WriteLimiter {
    pub fn new(quota: Option<WriteQuota>) -> Self {
        let buckets = quota.map(|quota| {
            RateLimiter::keyed(Quota::per_second(quota.per_second).allow_burst(quota.burst))
        });
        WriteLimiter(Arc::new(Buckets {
            buckets,
            checks: AtomicU64::new(0),
        }))
    }

    /// Takes one write from the user's bucket, or says how many whole seconds to wait.
    fn take(&self, user: UserId) -> Result<(), u32> {
        let Some(buckets) = &self.0.buckets else {
            return Ok(());
        };
        if self.0.checks.fetch_add(1, Ordering::Relaxed) % CHECKS_PER_SWEEP == CHECKS_PER_SWEEP - 1
        {
            buckets.retain_recent();
        }
        buckets.check_key(&user).map_err(|not_until| {
            let wait = not_until.wait_time_from(buckets.clock().now());
            // Whole seconds, rounded up, and never 0: a client retrying at once would fail again.
            u32::try_from(wait.as_secs_f64().ceil() as u64)
                .unwrap_or(u32::MAX)
                .max(1)
        })
    }
}

/// An authenticated user whose write is within the limit: the extractor of every limited write.
pub struct WriteUser(pub UserId);

impl<S> FromRequestParts<S> for WriteUser
where
    S: Send + Sync,
    JwtKeys: FromRef<S>,
    WriteLimiter: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        WriteLimiter::from_ref(state).take(user).map_err(|secs| {
            Problem::new(
                ErrorCode::RateLimited,
                format!("too many writes from this user; retry in {secs} s"),
            )
            .retry_after(secs)
            .into_response()
        })?;
        Ok(WriteUser(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(per_second: u32, burst: u32) -> Option<WriteQuota> {
        Some(WriteQuota {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        })
    }

    #[test]
    fn a_burst_passes_then_the_wait_is_whole_seconds() {
        let limiter = WriteLimiter::new(quota(1, 3));
        let user = UserId::new(7).unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.take(user), Ok(()));
        }
        assert_eq!(limiter.take(user), Err(1));
        assert_eq!(limiter.take(UserId::new(8).unwrap()), Ok(()));
    }

    #[test]
    fn no_quota_means_no_limit() {
        let limiter = WriteLimiter::new(None);
        let user = UserId::new(7).unwrap();
        assert!((0..10_000).all(|_| limiter.take(user).is_ok()));
    }
}
