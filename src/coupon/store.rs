use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::service::{Coupon, DiscountType, NewCoupon, Terms, UserCoupon, UserCouponStatus};
use crate::clock::{from_micros, to_micros};
use crate::db::DbError;
use crate::ids::{CouponId, OrderId, UserCouponId, UserId};
use crate::money::Won;
use crate::page::PageRequest;

const MICROS_PER_DAY: i64 = 86_400_000_000;

const COUPON_COLUMNS: &str = "c.id AS c_id, c.name AS c_name, c.discount_type AS c_discount_type,
    c.discount_value AS c_discount_value, c.min_order_amount AS c_min_order_amount,
    c.total_quantity AS c_total_quantity, c.issued_quantity AS c_issued_quantity,
    c.issue_starts_at AS c_issue_starts_at, c.issue_ends_at AS c_issue_ends_at, c.valid_days AS c_valid_days";

/// The same columns under the same names, for `RETURNING` (which has no table alias).
const COUPON_RETURNING: &str = "id AS c_id, name AS c_name, discount_type AS c_discount_type,
    discount_value AS c_discount_value, min_order_amount AS c_min_order_amount,
    total_quantity AS c_total_quantity, issued_quantity AS c_issued_quantity,
    issue_starts_at AS c_issue_starts_at, issue_ends_at AS c_issue_ends_at, valid_days AS c_valid_days";

const USER_COUPON_COLUMNS: &str =
    "u.id AS u_id, u.issued_at AS u_issued_at, u.expires_at AS u_expires_at,
    u.used_at AS u_used_at";

fn coupon(row: &AnyRow) -> Result<Coupon, DbError> {
    let id: i64 = row.try_get("c_id")?;
    let kind: String = row.try_get("c_discount_type")?;
    let total: i64 = row.try_get("c_total_quantity")?;
    let issued: i64 = row.try_get("c_issued_quantity")?;
    Ok(Coupon {
        id: CouponId::new(id).ok_or_else(|| DbError::Corrupt(format!("coupon id {id}")))?,
        name: row.try_get("c_name")?,
        discount_type: DiscountType::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("discount type {kind}")))?,
        discount_value: row.try_get("c_discount_value")?,
        min_order_amount: row.try_get("c_min_order_amount")?,
        total_quantity: total,
        issued_quantity: issued,
        remaining_quantity: total - issued,
        issue_starts_at: row
            .try_get::<Option<i64>, _>("c_issue_starts_at")?
            .map(from_micros),
        issue_ends_at: row
            .try_get::<Option<i64>, _>("c_issue_ends_at")?
            .map(from_micros),
        valid_days: row.try_get("c_valid_days")?,
    })
}

fn user_coupon(row: &AnyRow, now_micros: i64) -> Result<UserCoupon, DbError> {
    let coupon = coupon(row)?;
    let id: i64 = row.try_get("u_id")?;
    let expires_at: i64 = row.try_get("u_expires_at")?;
    let used_at: Option<i64> = row.try_get("u_used_at")?;
    let status = match used_at {
        Some(_) => UserCouponStatus::Used,
        None if expires_at <= now_micros => UserCouponStatus::Expired,
        None => UserCouponStatus::Available,
    };
    Ok(UserCoupon {
        id: UserCouponId::new(id)
            .ok_or_else(|| DbError::Corrupt(format!("user coupon id {id}")))?,
        coupon_id: coupon.id,
        coupon,
        status,
        issued_at: from_micros(row.try_get("u_issued_at")?),
        expires_at: from_micros(expires_at),
        used_at: used_at.map(from_micros),
    })
}

pub(super) async fn insert(
    conn: &mut AnyConnection,
    new: &NewCoupon,
    now: i64,
) -> Result<Coupon, DbError> {
    let row = sqlx::query(&format!(
        "INSERT INTO coupons (name, discount_type, discount_value, min_order_amount, total_quantity,
             issue_starts_at, issue_ends_at, valid_days, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COUPON_RETURNING}"
    ))
    .bind(new.name.trim())
    .bind(new.discount_type.as_str())
    .bind(new.discount_value)
    .bind(new.min_order_amount)
    .bind(new.total_quantity)
    .bind(new.issue_starts_at.map(|t| to_micros(t.to_utc())))
    .bind(new.issue_ends_at.map(|t| to_micros(t.to_utc())))
    .bind(new.valid_days)
    .bind(now)
    .fetch_one(conn)
    .await?;
    coupon(&row)
}

pub(super) async fn get(conn: &mut AnyConnection, id: CouponId) -> Result<Option<Coupon>, DbError> {
    sqlx::query(&format!(
        "SELECT {COUPON_COLUMNS} FROM coupons c WHERE c.id = $1"
    ))
    .bind(id.get())
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(coupon)
    .transpose()
}

pub(super) async fn holds(
    conn: &mut AnyConnection,
    user: UserId,
    id: CouponId,
) -> Result<bool, DbError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM user_coupons WHERE user_id = $1 AND coupon_id = $2")
            .bind(user.get())
            .bind(id.get())
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Takes one coupon if the window is open and any remain. The guard in the WHERE keeps the
/// issued quantity at or under the total whatever the concurrency.
pub(super) async fn take_one(
    conn: &mut AnyConnection,
    id: CouponId,
    now: i64,
) -> Result<Option<Coupon>, DbError> {
    sqlx::query(&format!(
        "UPDATE coupons SET issued_quantity = issued_quantity + 1
         WHERE id = $1 AND issued_quantity < total_quantity
           AND (issue_starts_at IS NULL OR issue_starts_at <= $2)
           AND (issue_ends_at IS NULL OR issue_ends_at > $2)
         RETURNING {COUPON_RETURNING}"
    ))
    .bind(id.get())
    .bind(now)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(coupon)
    .transpose()
}

pub(super) async fn insert_user_coupon(
    conn: &mut AnyConnection,
    user: UserId,
    coupon: &Coupon,
    now: i64,
) -> Result<UserCoupon, DbError> {
    let expires_at = now + coupon.valid_days * MICROS_PER_DAY;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(user.get())
    .bind(coupon.id.get())
    .bind(now)
    .bind(expires_at)
    .fetch_one(conn)
    .await?;
    Ok(UserCoupon {
        id: UserCouponId::new(id)
            .ok_or_else(|| DbError::Corrupt(format!("user coupon id {id}")))?,
        coupon_id: coupon.id,
        coupon: coupon.clone(),
        status: UserCouponStatus::Available,
        issued_at: from_micros(now),
        expires_at: from_micros(expires_at),
        used_at: None,
    })
}

pub(super) async fn list_user_coupons(
    conn: &mut AnyConnection,
    user: UserId,
    page: PageRequest,
    now: i64,
) -> Result<Vec<UserCoupon>, DbError> {
    sqlx::query(&format!(
        "SELECT {USER_COUPON_COLUMNS}, {COUPON_COLUMNS} FROM user_coupons u JOIN coupons c ON c.id = u.coupon_id
         WHERE u.user_id = $1 AND u.id < $2 ORDER BY u.id DESC LIMIT $3"
    ))
    .bind(user.get())
    .bind(page.after.unwrap_or(i64::MAX))
    .bind(page.fetch_limit())
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| user_coupon(row, now))
    .collect()
}

pub(super) async fn usable_terms(
    conn: &mut AnyConnection,
    user: UserId,
    id: UserCouponId,
    now: i64,
) -> Result<Option<Terms>, DbError> {
    let row = sqlx::query(
        "SELECT c.discount_type, c.discount_value, c.min_order_amount
         FROM user_coupons u JOIN coupons c ON c.id = u.coupon_id
         WHERE u.id = $1 AND u.user_id = $2 AND u.used_at IS NULL AND u.expires_at > $3",
    )
    .bind(id.get())
    .bind(user.get())
    .bind(now)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let kind: String = row.try_get(0)?;
    Ok(Some(Terms {
        discount_type: DiscountType::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("discount type {kind}")))?,
        discount_value: row.try_get(1)?,
        min_order_amount: Won(row.try_get(2)?),
    }))
}

pub(super) async fn mark_used(
    conn: &mut AnyConnection,
    user: UserId,
    id: UserCouponId,
    order: OrderId,
    now: i64,
) -> Result<bool, DbError> {
    let result = sqlx::query(
        "UPDATE user_coupons SET used_at = $3, order_id = $4
         WHERE id = $1 AND user_id = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(id.get())
    .bind(user.get())
    .bind(now)
    .bind(order.get())
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}
