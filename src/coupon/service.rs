use serde::Deserialize;
use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use utoipa::ToSchema;

use super::errors::CouponError;
use super::issuing::Issuing;
use super::model::{Coupon, DiscountType, UserCoupon};
use crate::audit::{self, Action, Entry};
use crate::bounds;
use crate::clock::{Clock, Timestamp};
use crate::http::ErrorCode;
use crate::ids::{CouponId, UserId};
use crate::page::{Page, PageRequest};
use crate::store::coupon::NewCouponRow;
use crate::store::Db;

pub const MAX_QUANTITY: i64 = 100_000_000;
pub const MAX_VALID_DAYS: i64 = 3650;
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// A RATE coupon takes at most 100 % off.
pub const MAX_RATE: i64 = 100;

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

/// Creates a coupon campaign, recorded in the audit log as `actor`'s.
pub async fn create(
    db: &Db,
    clock: &dyn Clock,
    actor: UserId,
    new: NewCoupon,
) -> Result<Coupon, CouponError> {
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
            let coupon: Coupon = conn.insert_coupon(&row, now).await?.into();
            let entry = Entry {
                actor,
                action: Action::CouponCreate,
                resource: format!("coupon:{}", coupon.id.get()),
                before: None,
                after: Some(audit::value(&coupon)),
                at: now,
            };
            audit::record(conn, &entry).await?;
            Ok(coupon)
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

/// What the coupons' handlers use.
#[derive(Clone)]
pub struct CouponState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub sold_out: Arc<SoldOut>,
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
    if match &result {
        Ok(issued) => issued.coupon.remaining_quantity == 0,
        Err(error) => matches!(error, CouponError::SoldOut(_)),
    } {
        sold_out.insert(id);
    }
    // Refusals by their problem code; a missing coupon, bad input or storage fault as OTHER.
    let outcome = match &result {
        Ok(_) => "ISSUED",
        Err(
            error @ (CouponError::SoldOut(_)
            | CouponError::AlreadyIssued(_)
            | CouponError::NotIssuable(..)),
        ) => error.code().map_or("OTHER", ErrorCode::as_str),
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
