//! Coupon campaigns and the coupons issued from them, as the API shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::usable::open;
use crate::ids::{CouponId, UserCouponId};
pub use crate::store::coupon::DiscountType;
use crate::store::coupon::{CouponRow, UserCouponRow};

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
            None if !open(false, row.expires_at, now) => UserCouponStatus::Expired,
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
