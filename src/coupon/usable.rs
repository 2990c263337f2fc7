//! Whether an issued coupon can be used, and what it takes off: the coupon's rules, decided
//! against user-coupon rows the caller has locked (an order's batch) or read (a listing).

use chrono::{DateTime, Utc};

use super::Terms;
use crate::ids::UserId;
use crate::store::coupon::HeldCouponRow;

/// Not used and not expired at `now`.
pub fn open(used: bool, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    !used && expires_at > now
}

/// The terms of `coupon` if `user` may use it now: theirs, unused, unexpired.
pub fn usable(coupon: &HeldCouponRow, user: UserId, now: DateTime<Utc>) -> Option<Terms> {
    (coupon.user_id == user.get() && open(coupon.used, coupon.expires_at, now))
        .then(|| Terms::from(coupon.terms))
}

/// Uses `coupon` (it was found [`usable`]), for the orders after it in the batch.
pub fn redeem(coupon: &mut HeldCouponRow) {
    coupon.used = true;
}
