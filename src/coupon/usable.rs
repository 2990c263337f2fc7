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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coupon::DiscountType;
    use crate::ids::UserCouponId;
    use crate::store::coupon::TermsRow;

    #[test]
    fn only_its_owner_uses_it_unused_and_before_it_expires() {
        let now: DateTime<Utc> = "2026-11-29T00:00:00Z".parse().unwrap();
        let owner = UserId::new(7).unwrap();
        let mut coupon = HeldCouponRow {
            id: UserCouponId::new(1).unwrap(),
            user_id: 7,
            used: false,
            expires_at: now + chrono::Duration::seconds(1),
            terms: TermsRow {
                discount_type: DiscountType::Fixed,
                discount_value: 500,
                min_order_amount: 0,
            },
        };
        assert!(usable(&coupon, owner, now).is_some());
        assert!(usable(&coupon, UserId::new(8).unwrap(), now).is_none());
        assert!(usable(&coupon, owner, coupon.expires_at).is_none());
        redeem(&mut coupon);
        assert!(usable(&coupon, owner, now).is_none());
    }
}
