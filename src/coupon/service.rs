use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::RwLock;
use thiserror::Error;
use utoipa::ToSchema;

use super::issuing::Issuing;
use crate::bounds;
use crate::clock::{Clock, Timestamp};
use crate::ids::{CouponId, UserCouponId, UserId};
use crate::money::Won;
use crate::page::{Page, PageRequest};
pub use crate::store::coupon::DiscountType;
use crate::store::coupon::{CouponRow, NewCouponRow, TermsRow, UserCouponRow};
use crate::store::{Db, StoreError, StoreFault};

pub const MAX_QUANTITY: i64 = 100_000_000;
pub const MAX_VALID_DAYS: i64 = 3650;
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// A RATE coupon takes at most 100 % off.
pub const MAX_RATE: i64 = 100;

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
    Db(#[from] StoreError),
}

impl StoreFault for CouponError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            CouponError::Db(e) => Some(e),
            _ => None,
        }
    }
}

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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCoupon {
    /// 1..=200 characters, not blank, no control characters.
    #[schema(schema_with = bounds::name)]
    pub name: String,
    pub discount_type: DiscountType,
    /// FIXED: won off (1..=1,000,000,000,000). RATE: percent off (1..=100).
    #[schema(schema_with = bounds::int::<1, MAX_AMOUNT>)]
    pub discount_value: i64,
    /// How many can be issued in all (1..=100,000,000).
    #[schema(schema_with = bounds::int::<1, MAX_QUANTITY>)]
    pub total_quantity: i64,
    /// An issued coupon expires this many days after issue (1..=3650).
    #[schema(schema_with = bounds::int::<1, MAX_VALID_DAYS>)]
    pub valid_days: i64,
    /// Compared with the order total before discount (0..=1,000,000,000,000, default 0).
    #[serde(default)]
    #[schema(schema_with = bounds::int::<0, MAX_AMOUNT>)]
    pub min_order_amount: i64,
    /// Issuing opens at this instant (RFC 3339 with offset; null: open now).
    #[schema(inline)]
    pub issue_starts_at: Option<Timestamp>,
    /// Issuing closes at this instant (exclusive; null: never).
    #[schema(inline)]
    pub issue_ends_at: Option<Timestamp>,
}

impl NewCoupon {
    fn validate(&self) -> Result<(), CouponError> {
        let invalid = |m: String| Err(CouponError::Invalid(m));
        bounds::check_name(&self.name).map_err(CouponError::Invalid)?;
        match self.discount_type {
            DiscountType::Fixed if !(1..=MAX_AMOUNT).contains(&self.discount_value) => {
                return invalid(format!(
                    "a FIXED discount_value must be between 1 and {MAX_AMOUNT} won"
                ))
            }
            DiscountType::Rate if !(1..=MAX_RATE).contains(&self.discount_value) => {
                return invalid(format!(
                    "a RATE discount_value must be a percentage between 1 and {MAX_RATE}"
                ))
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
    let now = clock.now();
    let new = std::sync::Arc::new(new);
    db.write(move |conn| {
        let new = new.clone();
        Box::pin(async move {
            let row = NewCouponRow {
                name: new.name.trim(),
                discount_type: new.discount_type,
                discount_value: new.discount_value,
                min_order_amount: new.min_order_amount,
                total_quantity: new.total_quantity,
                issue_starts_at: new.issue_starts_at.map(Timestamp::get),
                issue_ends_at: new.issue_ends_at.map(Timestamp::get),
                valid_days: new.valid_days,
            };
            Ok(conn.insert_coupon(&row, now).await?.into())
        })
    })
    .await
}

pub async fn get(db: &Db, id: CouponId) -> Result<Coupon, CouponError> {
    let row = db.read_lagging().await?.coupon(id).await?;
    row.map(Coupon::from).ok_or(CouponError::NotFound(id))
}

/// The campaigns a user can be issued at `clock.now()`: window open and some remaining, by id.
pub async fn list_issuable(
    db: &Db,
    clock: &dyn Clock,
    page: PageRequest,
) -> Result<Page<Coupon>, CouponError> {
    let rows = db
        .read_lagging()
        .await?
        .issuable_coupons(clock.now(), page)
        .await?;
    let coupons = rows.into_iter().map(Coupon::from).collect();
    Ok(Page::from_rows(coupons, page, |c: &Coupon| c.id.get()))
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

/// First come, first served: one per user, the window open, one taken from the remaining
/// quantity and the issue stored, decided with the issues waiting at the same moment in
/// arrival order, in one transaction (see `issuing`).
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
        let now = clock.now();
        db.write_shared(Issuing {
            user,
            coupon: id,
            now,
        })
        .await
        .unkeyed()
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
    if db.read().await?.holds_coupon(user, id).await? {
        Err(CouponError::AlreadyIssued(id))
    } else {
        Err(CouponError::SoldOut(id))
    }
}

/// The user's coupons, newest first, with their status at `clock.now()`.
pub async fn list_mine(
    db: &Db,
    clock: &dyn Clock,
    user: UserId,
    page: PageRequest,
) -> Result<Page<UserCoupon>, CouponError> {
    let now = clock.now();
    let rows = db.read().await?.user_coupons(user, page).await?;
    let coupons = rows
        .into_iter()
        .map(|row| UserCoupon::at(row, now))
        .collect();
    Ok(Page::from_rows(coupons, page, |c| c.id.get()))
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
