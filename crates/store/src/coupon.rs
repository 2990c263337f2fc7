//! Coupon campaigns and issued coupons: what the coupon service needs from a database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::StoreError;
use commerce_domain::ids::{CouponId, OrderId, UserCouponId, UserId};
use commerce_domain::page::PageRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "UPPERCASE"))]
pub enum DiscountType {
    Fixed,
    Rate,
}

impl DiscountType {
    /// The name as stored and as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscountType::Fixed => "FIXED",
            DiscountType::Rate => "RATE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponRow {
    pub id: CouponId,
    pub name: String,
    pub discount_type: DiscountType,
    pub discount_value: i64,
    pub min_order_amount: i64,
    pub total_quantity: i64,
    pub issued_quantity: i64,
    pub issue_starts_at: Option<DateTime<Utc>>,
    pub issue_ends_at: Option<DateTime<Utc>>,
    pub valid_days: i64,
}

/// A campaign to create (validated by the service).
#[derive(Debug, Clone)]
pub struct NewCouponRow<'a> {
    pub name: &'a str,
    pub discount_type: DiscountType,
    pub discount_value: i64,
    pub min_order_amount: i64,
    pub total_quantity: i64,
    pub issue_starts_at: Option<DateTime<Utc>>,
    pub issue_ends_at: Option<DateTime<Utc>>,
    pub valid_days: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCouponRow {
    pub id: UserCouponId,
    pub coupon: CouponRow,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// What an order needs to know of a coupon it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermsRow {
    pub discount_type: DiscountType,
    pub discount_value: i64,
    pub min_order_amount: i64,
}

/// A user coupon as an order batch needs it: whose, whether usable, on what terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldCouponRow {
    pub id: UserCouponId,
    pub user_id: i64,
    pub used: bool,
    pub expires_at: DateTime<Utc>,
    pub terms: TermsRow,
}

/// A coupon issue decided by a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewUserCouponRow {
    pub user: UserId,
    pub coupon: CouponId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// (user, campaign) pairs as stored, typed.
pub fn typed_pairs(rows: Vec<(i64, i64)>) -> Result<Vec<(UserId, CouponId)>, StoreError> {
    rows.into_iter()
        .map(|(user, coupon)| {
            Ok((
                UserId::new(user).ok_or_else(|| StoreError::corrupt(user))?,
                CouponId::new(coupon).ok_or_else(|| StoreError::corrupt(coupon))?,
            ))
        })
        .collect()
}

#[async_trait]
pub trait CouponStore {
    async fn insert_coupon(
        &mut self,
        new: &NewCouponRow<'_>,
        now: DateTime<Utc>,
    ) -> Result<CouponRow, StoreError>;

    async fn coupon(&mut self, id: CouponId) -> Result<Option<CouponRow>, StoreError>;

    /// Campaigns that can be issued at `now` (window open, some remain), by id, after the
    /// page's cursor.
    async fn issuable_coupons(
        &mut self,
        now: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Vec<CouponRow>, StoreError>;

    /// Whether the user already holds one of this campaign's coupons.
    async fn holds_coupon(&mut self, user: UserId, id: CouponId) -> Result<bool, StoreError>;

    /// The user's coupons, newest first, older than the page's cursor.
    async fn user_coupons(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<UserCouponRow>, StoreError>;

    /// Makes the coupon `order` used unused again (the order was cancelled). Whether it is
    /// available or expired follows from its expiry, as for any unused coupon.
    async fn release_coupon(&mut self, id: UserCouponId, order: OrderId) -> Result<(), StoreError>;

    /// The user coupons, locked until the transaction ends (PostgreSQL: `FOR UPDATE` in id
    /// order), in id order; missing ids are left out.
    async fn lock_user_coupons(
        &mut self,
        ids: &[UserCouponId],
    ) -> Result<Vec<HeldCouponRow>, StoreError>;

    /// Marks coupons used as a batch decided: (coupon, the order that used it, when).
    async fn use_coupons(
        &mut self,
        uses: &[(UserCouponId, OrderId, DateTime<Utc>)],
    ) -> Result<(), StoreError>;

    /// The campaigns, locked until the transaction ends (PostgreSQL: `FOR UPDATE` in id
    /// order), in id order; missing ids are left out.
    async fn lock_coupons(&mut self, ids: &[CouponId]) -> Result<Vec<CouponRow>, StoreError>;

    /// Which of these (user, campaign) pairs already hold a coupon.
    async fn holders(
        &mut self,
        pairs: &[(UserId, CouponId)],
    ) -> Result<Vec<(UserId, CouponId)>, StoreError>;

    /// Stores the issues a batch decided, in order, and each campaign's issued quantity
    /// after them; returns the new coupons' ids in the order given.
    async fn issue_coupons(
        &mut self,
        issued: &[(CouponId, i64)],
        coupons: &[NewUserCouponRow],
    ) -> Result<Vec<UserCouponId>, StoreError>;
}
