//! The rows a batched write locks, named so the committer can find out which of them another
//! session holds when a batch meets a lock it may not wait for.

/// A locked row: its table and key. A batch locks these kinds in this order (see
/// [`crate::WriteKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Row {
    Product(i64),
    UserCoupon(i64),
    /// A user's balance, by user id.
    Balance(i64),
    /// A coupon campaign.
    Coupon(i64),
}

impl Row {
    /// The table and key column the row lives in.
    pub fn table(self) -> (&'static str, &'static str) {
        match self {
            Row::Product(_) => ("products", "id"),
            Row::UserCoupon(_) => ("user_coupons", "id"),
            Row::Balance(_) => ("balances", "user_id"),
            Row::Coupon(_) => ("coupons", "id"),
        }
    }

    pub fn key(self) -> i64 {
        match self {
            Row::Product(id) | Row::UserCoupon(id) | Row::Balance(id) | Row::Coupon(id) => id,
        }
    }

    /// The same kind of row with another key.
    pub fn with_key(self, key: i64) -> Row {
        match self {
            Row::Product(_) => Row::Product(key),
            Row::UserCoupon(_) => Row::UserCoupon(key),
            Row::Balance(_) => Row::Balance(key),
            Row::Coupon(_) => Row::Coupon(key),
        }
    }
}
