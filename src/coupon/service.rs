use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::collections::HashSet;
use std::sync::RwLock;
use thiserror::Error;
use utoipa::ToSchema;

use super::store;
use crate::clock::{to_micros, Clock};
use crate::db::{Db, DbError, Transient};
use crate::ids::{CouponId, OrderId, UserCouponId, UserId};
use crate::money::Won;
use crate::page::{Page, PageRequest};

const MAX_NAME_CHARS: usize = 200;
const MAX_QUANTITY: i64 = 100_000_000;
const MAX_VALID_DAYS: i64 = 3650;
const MAX_AMOUNT: i64 = 1_000_000_000_000;

#[derive(Debug, Error)]
pub enum CouponError {
    #[error("coupon {0} does not exist")]
    NotFound(CouponId),
    #[error("coupon {0} is sold out")]
    SoldOut(CouponId),
    #[error("coupon {0} was already issued to this user")]
    AlreadyIssued(CouponId),
    #[error("coupon {0} cannot be issued now: {1}")]
    NotIssuable(CouponId, &'static str),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Transient for CouponError {
    fn is_transient(&self) -> bool {
        matches!(self, CouponError::Db(e) if e.is_transient())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DiscountType {
    /// `discount_value` won off.
    Fixed,
    /// `discount_value` percent off, rounded down.
    Rate,
}

impl DiscountType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            DiscountType::Fixed => "FIXED",
            DiscountType::Rate => "RATE",
        }
    }

    pub(super) fn parse(raw: &str) -> Option<Self> {
        match raw {
            "FIXED" => Some(DiscountType::Fixed),
            "RATE" => Some(DiscountType::Rate),
            _ => None,
        }
    }
}

/// What a coupon takes off an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    pub issue_starts_at: Option<DateTime<Utc>>,
    pub issue_ends_at: Option<DateTime<Utc>>,
    pub valid_days: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum UserCouponStatus {
    Available,
    Used,
    Expired,
}

/// A coupon issued to a user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserCoupon {
    #[schema(value_type = i64)]
    pub id: UserCouponId,
    #[schema(value_type = i64)]
    pub coupon_id: CouponId,
    pub coupon: Coupon,
    pub status: UserCouponStatus,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCoupon {
    /// 1..=200 characters, not blank.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    pub discount_type: DiscountType,
    /// FIXED: won off (≥ 1). RATE: percent off (1..=100).
    #[schema(minimum = 1)]
    pub discount_value: i64,
    /// How many can be issued in all (1..=100,000,000).
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub total_quantity: i64,
    /// An issued coupon expires this many days after issue (1..=3650).
    #[schema(minimum = 1, maximum = 3650)]
    pub valid_days: i64,
    /// Compared with the order total before discount (default 0).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub min_order_amount: i64,
    /// Issuing opens at this instant (RFC 3339 with offset; null: open now).
    pub issue_starts_at: Option<DateTime<FixedOffset>>,
    /// Issuing closes at this instant (exclusive; null: never).
    pub issue_ends_at: Option<DateTime<FixedOffset>>,
}

impl NewCoupon {
    fn validate(&self) -> Result<(), CouponError> {
        let invalid = |m: String| Err(CouponError::Invalid(m));
        if self.name.trim().is_empty() || self.name.chars().count() > MAX_NAME_CHARS {
            return invalid(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters and not blank"
            ));
        }
        match self.discount_type {
            DiscountType::Fixed if !(1..=MAX_AMOUNT).contains(&self.discount_value) => {
                return invalid(format!(
                    "a FIXED discount_value must be between 1 and {MAX_AMOUNT} won"
                ))
            }
            DiscountType::Rate if !(1..=100).contains(&self.discount_value) => {
                return invalid(
                    "a RATE discount_value must be a percentage between 1 and 100".to_owned(),
                )
            }
            _ => {}
        }
        if !(1..=MAX_QUANTITY).contains(&self.total_quantity) {
            return invalid(format!(
                "total_quantity must be between 1 and {MAX_QUANTITY}"
            ));
        }
        if !(1..=MAX_VALID_DAYS).contains(&self.valid_days) {
            return invalid(format!("valid_days must be between 1 and {MAX_VALID_DAYS}"));
        }
        if !(0..=MAX_AMOUNT).contains(&self.min_order_amount) {
            return invalid(format!(
                "min_order_amount must be between 0 and {MAX_AMOUNT}"
            ));
        }
        if let (Some(starts), Some(ends)) = (self.issue_starts_at, self.issue_ends_at) {
            if starts >= ends {
                return invalid("issue_starts_at must be before issue_ends_at".to_owned());
            }
        }
        Ok(())
    }
}

pub async fn create(db: &Db, clock: &dyn Clock, new: NewCoupon) -> Result<Coupon, CouponError> {
    new.validate()?;
    let now = to_micros(clock.now());
    let new = std::sync::Arc::new(new);
    db.write(move |conn| {
        let new = new.clone();
        Box::pin(async move { Ok(store::insert(conn, &new, now).await?) })
    })
    .await
}

pub async fn get(db: &Db, id: CouponId) -> Result<Coupon, CouponError> {
    let mut conn = db.reader().acquire().await.map_err(DbError::from)?;
    store::get(&mut conn, id)
        .await?
        .ok_or(CouponError::NotFound(id))
}

/// Coupons known to be sold out. Sold out is permanent — the issued quantity never goes down
/// and the total never changes — so once seen, later requests in a rush are answered from a
/// read instead of queueing for the writer. The database stays the authority.
#[derive(Debug, Default)]
pub struct SoldOut(RwLock<HashSet<CouponId>>);

impl SoldOut {
    fn contains(&self, id: CouponId) -> bool {
        self.0.read().expect("sold-out lock").contains(&id)
    }

    fn insert(&self, id: CouponId) {
        self.0.write().expect("sold-out lock").insert(id);
    }
}

/// First come, first served: checks the window, one per user, takes one from the remaining
/// quantity with a guarded update and stores the issue, all in one transaction.
pub async fn issue(
    db: &Db,
    clock: &dyn Clock,
    sold_out: &SoldOut,
    user: UserId,
    id: CouponId,
) -> Result<UserCoupon, CouponError> {
    let result = if sold_out.contains(id) {
        refuse_sold_out(db, user, id).await
    } else {
        take_and_record(db, clock.now(), user, id).await
    };
    let outcome = match &result {
        Ok(issued) => {
            if issued.coupon.remaining_quantity == 0 {
                sold_out.insert(id);
            }
            "ISSUED"
        }
        Err(CouponError::SoldOut(_)) => {
            sold_out.insert(id);
            "COUPON_SOLD_OUT"
        }
        Err(CouponError::AlreadyIssued(_)) => "COUPON_ALREADY_ISSUED",
        Err(CouponError::NotIssuable(..)) => "COUPON_NOT_ISSUABLE",
        Err(_) => "OTHER",
    };
    metrics::counter!("coupon_issue_total", "outcome" => outcome).increment(1);
    result
}

/// A user who holds the coupon still hears so, as on the transactional path.
async fn refuse_sold_out(db: &Db, user: UserId, id: CouponId) -> Result<UserCoupon, CouponError> {
    let mut conn = db.reader().acquire().await.map_err(DbError::from)?;
    if store::holds(&mut conn, user, id).await? {
        Err(CouponError::AlreadyIssued(id))
    } else {
        Err(CouponError::SoldOut(id))
    }
}

async fn take_and_record(
    db: &Db,
    now: DateTime<Utc>,
    user: UserId,
    id: CouponId,
) -> Result<UserCoupon, CouponError> {
    db.write(move |conn| {
        Box::pin(async move {
            if store::holds(conn, user, id).await? {
                return Err(CouponError::AlreadyIssued(id));
            }
            let Some(coupon) = store::take_one(conn, id, to_micros(now)).await? else {
                return Err(refusal(conn, id, now).await?);
            };
            match store::insert_user_coupon(conn, user, &coupon, to_micros(now)).await {
                Ok(issued) => Ok(issued),
                // The unique (user, coupon) index is the last line of defence.
                Err(e) if e.is_unique_violation() => Err(CouponError::AlreadyIssued(id)),
                Err(e) => Err(e.into()),
            }
        })
    })
    .await
}

/// Why the guarded update took nothing.
async fn refusal(
    conn: &mut AnyConnection,
    id: CouponId,
    now: DateTime<Utc>,
) -> Result<CouponError, DbError> {
    let Some(coupon) = store::get(conn, id).await? else {
        return Ok(CouponError::NotFound(id));
    };
    Ok(
        if coupon.issue_starts_at.is_some_and(|starts| now < starts) {
            CouponError::NotIssuable(id, "issuing has not started")
        } else if coupon.issue_ends_at.is_some_and(|ends| now >= ends) {
            CouponError::NotIssuable(id, "issuing has ended")
        } else {
            CouponError::SoldOut(id)
        },
    )
}

/// The user's coupons, newest first, with their status at `clock.now()`.
pub async fn list_mine(
    db: &Db,
    clock: &dyn Clock,
    user: UserId,
    page: PageRequest,
) -> Result<Page<UserCoupon>, CouponError> {
    let mut conn = db.reader().acquire().await.map_err(DbError::from)?;
    let rows = store::list_user_coupons(&mut conn, user, page, to_micros(clock.now())).await?;
    Ok(Page::from_rows(rows, page, |c| c.id.get()))
}

/// The terms of a user coupon that this user may use now; `None` if it is not theirs, is used
/// or has expired. Read inside the order's transaction; `mark_used` is the guarded step.
pub async fn terms_for(
    conn: &mut AnyConnection,
    user: UserId,
    id: UserCouponId,
    now: DateTime<Utc>,
) -> Result<Option<Terms>, DbError> {
    store::usable_terms(conn, user, id, to_micros(now)).await
}

/// Marks the coupon used by `order`, only if it is still unused and unexpired; false otherwise.
pub async fn mark_used(
    conn: &mut AnyConnection,
    user: UserId,
    id: UserCouponId,
    order: OrderId,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    store::mark_used(conn, user, id, order, to_micros(now)).await
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
