//! Coupon campaigns and issued coupons: what the coupon service needs from a database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::StoreError;
use crate::ids::{CouponId, OrderId, UserCouponId, UserId};
use crate::page::PageRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "text", rename_all = "UPPERCASE")]
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

    /// Takes one coupon if the window is open at `now` and any remain (the guard is in the
    /// statement). Returns the campaign after, or `None`.
    async fn take_coupon(
        &mut self,
        id: CouponId,
        now: DateTime<Utc>,
    ) -> Result<Option<CouponRow>, StoreError>;

    /// Stores the issue; a second one for the same user and campaign is a unique violation.
    async fn insert_user_coupon(
        &mut self,
        user: UserId,
        coupon: CouponId,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<UserCouponId, StoreError>;

    /// The user's coupons, newest first, older than the page's cursor.
    async fn user_coupons(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<UserCouponRow>, StoreError>;

    /// The terms of the user's coupon `id` if it is unused and unexpired at `now`.
    async fn usable_terms(
        &mut self,
        user: UserId,
        id: UserCouponId,
        now: DateTime<Utc>,
    ) -> Result<Option<TermsRow>, StoreError>;

    /// Makes the coupon `order` used unused again (the order was cancelled). Whether it is
    /// available or expired follows from its expiry, as for any unused coupon.
    async fn release_coupon(&mut self, id: UserCouponId, order: OrderId) -> Result<(), StoreError>;

    /// Marks the coupon used by `order` only if it is still the user's, unused and unexpired.
    async fn use_coupon(
        &mut self,
        user: UserId,
        id: UserCouponId,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}
