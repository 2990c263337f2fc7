//! Coupon campaigns, the coupons issued from them and their discount terms, as the API shows
//! them and as orders use them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::{CouponId, UserCouponId};
use crate::money::Won;
pub use crate::store::coupon::DiscountType;
use crate::store::coupon::{CouponRow, TermsRow, UserCouponRow};

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

/// A coupon campaign.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Coupon {
    #[schema(value_type = i64)]
    pub id: CouponId,
    pub name: String,
    pub discount_type: DiscountType,
    pub discount_value: i64,
    pub min_order_amount: i64,
    pub total_quantity: i64,
    pub issued_quantity: i64,
    pub remaining_quantity: i64,
    /// Issuing opens at this instant; null: open from the start.
    #[schema(required = true)]
    pub issue_starts_at: Option<DateTime<Utc>>,
    /// Issuing closes at this instant (exclusive); null: never.
    #[schema(required = true)]
    pub issue_ends_at: Option<DateTime<Utc>>,
    pub valid_days: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum UserCouponStatus {
    Available,
    Used,
    Expired,
}

/// A coupon issued to a user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserCoupon {
    #[schema(value_type = i64)]
    pub id: UserCouponId,
    #[schema(value_type = i64)]
    pub coupon_id: CouponId,
    pub coupon: Coupon,
    pub status: UserCouponStatus,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When an order used it; null while unused.
    #[schema(required = true)]
    pub used_at: Option<DateTime<Utc>>,
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

impl From<CouponRow> for Coupon {
    fn from(row: CouponRow) -> Self {
        Coupon {
            id: row.id,
            name: row.name,
            discount_type: row.discount_type,
            discount_value: row.discount_value,
            min_order_amount: row.min_order_amount,
            total_quantity: row.total_quantity,
            issued_quantity: row.issued_quantity,
            remaining_quantity: row.total_quantity - row.issued_quantity,
            issue_starts_at: row.issue_starts_at,
            issue_ends_at: row.issue_ends_at,
            valid_days: row.valid_days,
        }
    }
}

impl UserCoupon {
    /// The issued coupon with its status at `now`.
    pub(super) fn at(row: UserCouponRow, now: DateTime<Utc>) -> Self {
        let status = match row.used_at {
            Some(_) => UserCouponStatus::Used,
            None if !super::usable::open(false, row.expires_at, now) => UserCouponStatus::Expired,
            None => UserCouponStatus::Available,
        };
        UserCoupon {
            id: row.id,
            coupon_id: row.coupon.id,
            coupon: row.coupon.into(),
            status,
            issued_at: row.issued_at,
            expires_at: row.expires_at,
            used_at: row.used_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
