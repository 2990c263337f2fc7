//! The kinds of writes that run together, set-based, and the order their locks come in.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::idempotency::{Answer, Attempt, IdempotencyError, Outcome};
use crate::{Conn, Row, StoreError};

/// The kinds of [`Shared`] writes, in the schema's lock order: a batch runs its kinds in this
/// order and each kind locks its rows in the order of the tables (products, user coupons,
/// balances, coupon campaigns, each by id), so two batches never wait on each other in a
/// circle. One kind, one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WriteKind {
    /// Products, then user coupons, then balances.
    Orders,
    /// Each cancellation its order's row, products, user coupon, balance, one after another.
    Cancellations,
    /// Balances.
    Charges,
    /// Coupon campaigns.
    CouponIssues,
}

/// Writes of one kind that run together, set-based. `run_all` sees the writes of a batch that
/// are to run (keyed ones whose key was free) in arrival order, inside the batch's
/// transaction: it locks the rows they need, decides each write in turn against the locked
/// state, and writes the effect of all of them with a few statements. Keys are claimed and
/// answers stored around it by the committer (see `idempotency`).
#[async_trait]
pub trait Shared: Send + Sync + Sized + 'static {
    type Value: Send + 'static;
    /// A refusal, or a storage error. Key reuse is one only for keyed kinds.
    type Error: From<StoreError> + From<IdempotencyError> + Send + 'static;

    const KIND: WriteKind;

    /// The rows this write will lock, so the committer can tell which writes a lock held
    /// elsewhere blocks.
    fn rows(&self, rows: &mut Vec<Row>);

    /// The request's idempotency key, for the kinds that honour one.
    fn attempt(&self) -> Option<&Attempt> {
        None
    }

    /// When the write was asked for: the time its key is claimed at.
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// The answer a key keeps for `result`; `None` for what must not be remembered (server
    /// errors).
    fn remember(_result: &Result<Self::Value, Self::Error>) -> Option<Answer> {
        None
    }

    /// One result per item, in order. `Err` fails the whole batch (a storage failure).
    async fn run_all(
        conn: &mut dyn Conn,
        items: &[&Self],
    ) -> Result<Vec<Result<Self::Value, Self::Error>>, StoreError>;
}

/// What the caller of a [`Shared`] write hears.
pub type SharedOutcome<W> = Outcome<<W as Shared>::Value, <W as Shared>::Error>;
