use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::product::json_ids;
use super::{instant, json_rows, micros};
use crate::ids::{CouponId, OrderId, UserCouponId, UserId};
use crate::page::PageRequest;
use crate::store::coupon::{
    typed_pairs, CouponRow, CouponStore, DiscountType, HeldCouponRow, NewCouponRow,
    NewUserCouponRow, TermsRow, UserCouponRow,
};
use crate::store::StoreError;

/// The campaign's columns, unqualified (for `RETURNING`) and as `c.` of a join.
macro_rules! coupon_columns {
    ($($p:literal)?) => {
        concat!(
            $($p,)? "id, ", $($p,)? "name, ", $($p,)? "discount_type, ", $($p,)? "discount_value, ",
            $($p,)? "min_order_amount, ", $($p,)? "total_quantity, ", $($p,)? "issued_quantity, ",
            $($p,)? "issue_starts_at, ", $($p,)? "issue_ends_at, ", $($p,)? "valid_days"
        )
    };
}

#[derive(sqlx::FromRow)]
struct Coupon {
    id: i64,
    name: String,
    discount_type: DiscountType,
    discount_value: i64,
    min_order_amount: i64,
    total_quantity: i64,
    issued_quantity: i64,
    issue_starts_at: Option<i64>,
    issue_ends_at: Option<i64>,
    valid_days: i64,
}

impl TryFrom<Coupon> for CouponRow {
    type Error = StoreError;
    fn try_from(row: Coupon) -> Result<Self, StoreError> {
        Ok(CouponRow {
            id: CouponId::new(row.id).ok_or_else(|| StoreError::corrupt(row.id))?,
            name: row.name,
            discount_type: row.discount_type,
            discount_value: row.discount_value,
            min_order_amount: row.min_order_amount,
            total_quantity: row.total_quantity,
            issued_quantity: row.issued_quantity,
            issue_starts_at: row.issue_starts_at.map(instant).transpose()?,
            issue_ends_at: row.issue_ends_at.map(instant).transpose()?,
            valid_days: row.valid_days,
        })
    }
}

#[derive(sqlx::FromRow)]
struct UserCoupon {
    user_coupon_id: i64,
    issued_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    #[sqlx(flatten)]
    coupon: Coupon,
}

impl TryFrom<UserCoupon> for UserCouponRow {
    type Error = StoreError;
    fn try_from(row: UserCoupon) -> Result<Self, StoreError> {
        let id = row.user_coupon_id;
        Ok(UserCouponRow {
            id: UserCouponId::new(id).ok_or_else(|| StoreError::corrupt(id))?,
            coupon: row.coupon.try_into()?,
            issued_at: instant(row.issued_at)?,
            expires_at: instant(row.expires_at)?,
            used_at: row.used_at.map(instant).transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct Terms {
    discount_type: DiscountType,
    discount_value: i64,
    min_order_amount: i64,
}

#[derive(sqlx::FromRow)]
struct Held {
    id: i64,
    user_id: i64,
    used: bool,
    expires_at: i64,
    #[sqlx(flatten)]
    terms: Terms,
}

impl TryFrom<Held> for HeldCouponRow {
    type Error = StoreError;
    fn try_from(row: Held) -> Result<Self, StoreError> {
        Ok(HeldCouponRow {
            id: UserCouponId::new(row.id).ok_or_else(|| StoreError::corrupt(row.id))?,
            user_id: row.user_id,
            used: row.used,
            expires_at: instant(row.expires_at)?,
            terms: TermsRow {
                discount_type: row.terms.discount_type,
                discount_value: row.terms.discount_value,
                min_order_amount: row.terms.min_order_amount,
            },
        })
    }
}

#[async_trait]
impl CouponStore for SqliteConnection {
    async fn insert_coupon(
        &mut self,
        new: &NewCouponRow<'_>,
        now: DateTime<Utc>,
    ) -> Result<CouponRow, StoreError> {
        sqlx::query_as::<_, Coupon>(concat!(
            "INSERT INTO coupons (name, discount_type, discount_value, min_order_amount,
                 total_quantity, issue_starts_at, issue_ends_at, valid_days, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
            coupon_columns!()
        ))
        .bind(new.name)
        .bind(new.discount_type)
        .bind(new.discount_value)
        .bind(new.min_order_amount)
        .bind(new.total_quantity)
        .bind(new.issue_starts_at.map(micros))
        .bind(new.issue_ends_at.map(micros))
        .bind(new.valid_days)
        .bind(micros(now))
        .fetch_one(&mut *self)
        .await?
        .try_into()
    }

    async fn coupon(&mut self, id: CouponId) -> Result<Option<CouponRow>, StoreError> {
        sqlx::query_as::<_, Coupon>(concat!(
            "SELECT ",
            coupon_columns!(),
            " FROM coupons WHERE id = $1"
        ))
        .bind(id.get())
        .fetch_optional(&mut *self)
        .await?
        .map(CouponRow::try_from)
        .transpose()
    }

    async fn issuable_coupons(
        &mut self,
        now: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Vec<CouponRow>, StoreError> {
        sqlx::query_as::<_, Coupon>(concat!(
            "SELECT ",
            coupon_columns!(),
            " FROM coupons
             WHERE id > $1 AND issued_quantity < total_quantity
               AND (issue_starts_at IS NULL OR issue_starts_at <= $2)
               AND (issue_ends_at IS NULL OR issue_ends_at > $2)
             ORDER BY id LIMIT $3"
        ))
        .bind(page.after.unwrap_or(0))
        .bind(micros(now))
        .bind(page.fetch_limit())
        .fetch_all(&mut *self)
        .await?
        .into_iter()
        .map(CouponRow::try_from)
        .collect()
    }

    async fn holds_coupon(&mut self, user: UserId, id: CouponId) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM user_coupons WHERE user_id = $1 AND coupon_id = $2")
                .bind(user.get())
                .bind(id.get())
                .fetch_optional(&mut *self)
                .await?;
        Ok(found.is_some())
    }

    async fn user_coupons(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<UserCouponRow>, StoreError> {
        sqlx::query_as::<_, UserCoupon>(concat!(
            "SELECT u.id AS user_coupon_id, u.issued_at, u.expires_at, u.used_at, ",
            coupon_columns!("c."),
            " FROM user_coupons u JOIN coupons c ON c.id = u.coupon_id
             WHERE u.user_id = $1 AND u.id < $2 ORDER BY u.id DESC LIMIT $3"
        ))
        .bind(user.get())
        .bind(page.after.unwrap_or(i64::MAX))
        .bind(page.fetch_limit())
        .fetch_all(&mut *self)
        .await?
        .into_iter()
        .map(UserCouponRow::try_from)
        .collect()
    }

    async fn lock_user_coupons(
        &mut self,
        ids: &[UserCouponId],
    ) -> Result<Vec<HeldCouponRow>, StoreError> {
        let rows: Vec<Held> = sqlx::query_as(
            "SELECT u.id, u.user_id, u.used_at IS NOT NULL AS used, u.expires_at,
                 c.discount_type, c.discount_value, c.min_order_amount
             FROM user_coupons u JOIN coupons c ON c.id = u.coupon_id
             WHERE u.id IN (SELECT value FROM json_each($1)) ORDER BY u.id",
        )
        .bind(json_ids(ids.iter().map(|id| id.get())))
        .fetch_all(&mut *self)
        .await?;
        rows.into_iter().map(HeldCouponRow::try_from).collect()
    }

    async fn use_coupons(
        &mut self,
        uses: &[(UserCouponId, OrderId, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE user_coupons SET used_at = v.value ->> 2, order_id = v.value ->> 1
             FROM json_each($1) AS v WHERE user_coupons.id = v.value ->> 0",
        )
        .bind(json_rows(
            uses.iter()
                .map(|&(id, order, at)| (id.get(), order.get(), micros(at))),
        ))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn lock_coupons(&mut self, ids: &[CouponId]) -> Result<Vec<CouponRow>, StoreError> {
        let rows: Vec<Coupon> = sqlx::query_as(concat!(
            "SELECT ",
            coupon_columns!(),
            " FROM coupons WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id"
        ))
        .bind(json_ids(ids.iter().map(|id| id.get())))
        .fetch_all(&mut *self)
        .await?;
        rows.into_iter().map(CouponRow::try_from).collect()
    }

    async fn holders(
        &mut self,
        pairs: &[(UserId, CouponId)],
    ) -> Result<Vec<(UserId, CouponId)>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT u.user_id, u.coupon_id FROM json_each($1) AS p
             JOIN user_coupons u ON u.user_id = p.value ->> 0 AND u.coupon_id = p.value ->> 1",
        )
        .bind(json_rows(pairs.iter().map(|(u, c)| (u.get(), c.get()))))
        .fetch_all(&mut *self)
        .await?;
        typed_pairs(rows)
    }

    async fn issue_coupons(
        &mut self,
        issued: &[(CouponId, i64)],
        coupons: &[NewUserCouponRow],
    ) -> Result<Vec<UserCouponId>, StoreError> {
        sqlx::query(
            "UPDATE coupons SET issued_quantity = v.value ->> 1
             FROM json_each($1) AS v WHERE coupons.id = v.value ->> 0",
        )
        .bind(json_rows(issued.iter().map(|&(id, q)| (id.get(), q))))
        .execute(&mut *self)
        .await?;
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at)
             SELECT c.value ->> 0, c.value ->> 1, c.value ->> 2, c.value ->> 3
             FROM json_each($1) AS c ORDER BY c.key RETURNING id",
        )
        .bind(json_rows(coupons.iter().map(|c| {
            (
                c.user.get(),
                c.coupon.get(),
                micros(c.issued_at),
                micros(c.expires_at),
            )
        })))
        .fetch_all(&mut *self)
        .await?;
        // The one writer numbers rows in insert order, so sorting the ids restores it.
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| UserCouponId::new(id).ok_or_else(|| StoreError::corrupt(id)))
            .collect()
    }

    async fn release_coupon(&mut self, id: UserCouponId, order: OrderId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE user_coupons SET used_at = NULL, order_id = NULL WHERE id = $1 AND order_id = $2",
        )
        .bind(id.get())
        .bind(order.get())
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}
