//! Whether an issued coupon can be used, and what it takes off: the coupon's rules, decided
//! against user-coupon rows the caller has locked (an order's batch) or read (a listing).

use chrono::{DateTime, Utc};

use crate::ids::UserId;
use crate::money::Won;
use crate::store::coupon::{DiscountType, HeldCouponRow, TermsRow};

/// What a coupon takes off an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    pub discount_type: DiscountType,
    pub discount_value: i64,
    pub min_order_amount: Won,
}

impl Terms {
    /// The discount on an order of `total`: never more than the total; RATE rounds down.
    /// `None` when the total is under the coupon's minimum order amount.
    pub fn discount_on(&self, total: Won) -> Option<Won> {
        if total < self.min_order_amount {
            return None;
        }
        let discount = match self.discount_type {
            DiscountType::Fixed => self.discount_value,
            // i128: total × rate cannot overflow whatever the total.
            DiscountType::Rate => (total.get() as i128 * self.discount_value as i128 / 100) as i64,
        };
        Some(Won(discount.clamp(0, total.get())))
    }
}

impl From<TermsRow> for Terms {
    fn from(row: TermsRow) -> Self {
        Terms {
            discount_type: row.discount_type,
            discount_value: row.discount_value,
            min_order_amount: Won(row.min_order_amount),
        }
    }
}

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
    use crate::ids::UserCouponId;

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

    fn terms(discount_type: DiscountType, value: i64, min: i64) -> Terms {
        Terms {
            discount_type,
            discount_value: value,
            min_order_amount: Won(min),
        }
    }

    #[test]
    fn a_fixed_discount_never_exceeds_the_total() {
        assert_eq!(
            terms(DiscountType::Fixed, 3000, 0).discount_on(Won(10_000)),
            Some(Won(3000))
        );
        assert_eq!(
            terms(DiscountType::Fixed, 3000, 0).discount_on(Won(2000)),
            Some(Won(2000))
        );
    }

    #[test]
    fn a_rate_discount_rounds_down() {
        assert_eq!(
            terms(DiscountType::Rate, 15, 0).discount_on(Won(999)),
            Some(Won(149))
        );
        assert_eq!(
            terms(DiscountType::Rate, 100, 0).discount_on(Won(999)),
            Some(Won(999))
        );
    }

    #[test]
    fn the_minimum_order_amount_is_compared_with_the_total_before_discount() {
        assert_eq!(
            terms(DiscountType::Fixed, 1000, 5000).discount_on(Won(4999)),
            None
        );
        assert_eq!(
            terms(DiscountType::Fixed, 1000, 5000).discount_on(Won(5000)),
            Some(Won(1000))
        );
    }
}
