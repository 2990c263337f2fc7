use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::db;
use crate::PgConn;
use commerce_domain::ids::{CouponId, OrderId, UserCouponId, UserId};
use commerce_domain::page::PageRequest;
use commerce_store::coupon::{
    typed_pairs, CouponRow, CouponStore, DiscountType, HeldCouponRow, NewCouponRow,
    NewUserCouponRow, TermsRow, UserCouponRow,
};
use commerce_store::StoreError;

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
    issue_starts_at: Option<DateTime<Utc>>,
    issue_ends_at: Option<DateTime<Utc>>,
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
            issue_starts_at: row.issue_starts_at,
            issue_ends_at: row.issue_ends_at,
            valid_days: row.valid_days,
        })
    }
}

#[derive(sqlx::FromRow)]
struct UserCoupon {
    user_coupon_id: i64,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
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
            issued_at: row.issued_at,
            expires_at: row.expires_at,
            used_at: row.used_at,
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
    expires_at: DateTime<Utc>,
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
            expires_at: row.expires_at,
            terms: TermsRow {
                discount_type: row.terms.discount_type,
                discount_value: row.terms.discount_value,
                min_order_amount: row.terms.min_order_amount,
            },
        })
    }
}

#[async_trait]
impl CouponStore for PgConn {
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
        .bind(new.issue_starts_at)
        .bind(new.issue_ends_at)
        .bind(new.valid_days)
        .bind(now)
        .fetch_one(&mut self.0)
        .await
        .map_err(db)?
        .try_into()
    }

    async fn coupon(&mut self, id: CouponId) -> Result<Option<CouponRow>, StoreError> {
        sqlx::query_as::<_, Coupon>(concat!(
            "SELECT ",
            coupon_columns!(),
            " FROM coupons WHERE id = $1"
        ))
        .bind(id.get())
        .fetch_optional(&mut self.0)
        .await
        .map_err(db)?
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
        .bind(now)
        .bind(page.fetch_limit())
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?
        .into_iter()
        .map(CouponRow::try_from)
        .collect()
    }

    async fn holds_coupon(&mut self, user: UserId, id: CouponId) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM user_coupons WHERE user_id = $1 AND coupon_id = $2")
                .bind(user.get())
                .bind(id.get())
                .fetch_optional(&mut self.0)
                .await
                .map_err(db)?;
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
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?
        .into_iter()
        .map(UserCouponRow::try_from)
        .collect()
    }

    async fn lock_user_coupons(
        &mut self,
        ids: &[UserCouponId],
    ) -> Result<Vec<HeldCouponRow>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        let rows: Vec<Held> = sqlx::query_as(
            "SELECT u.id, u.user_id, u.used_at IS NOT NULL AS used, u.expires_at,
                 c.discount_type, c.discount_value, c.min_order_amount
             FROM user_coupons u JOIN coupons c ON c.id = u.coupon_id
             WHERE u.id = ANY($1) ORDER BY u.id FOR UPDATE OF u",
        )
        .bind(ids)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        rows.into_iter().map(HeldCouponRow::try_from).collect()
    }

    async fn use_coupons(
        &mut self,
        uses: &[(UserCouponId, OrderId, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE user_coupons u SET used_at = v.at, order_id = v.o
             FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[]) AS v(id, o, at)
             WHERE u.id = v.id",
        )
        .bind(uses.iter().map(|(id, _, _)| id.get()).collect::<Vec<_>>())
        .bind(
            uses.iter()
                .map(|(_, order, _)| order.get())
                .collect::<Vec<_>>(),
        )
        .bind(uses.iter().map(|&(_, _, at)| at).collect::<Vec<_>>())
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn lock_coupons(&mut self, ids: &[CouponId]) -> Result<Vec<CouponRow>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        let rows: Vec<Coupon> = sqlx::query_as(concat!(
            "SELECT ",
            coupon_columns!(),
            " FROM coupons WHERE id = ANY($1) ORDER BY id FOR UPDATE"
        ))
        .bind(ids)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        rows.into_iter().map(CouponRow::try_from).collect()
    }

    async fn holders(
        &mut self,
        pairs: &[(UserId, CouponId)],
    ) -> Result<Vec<(UserId, CouponId)>, StoreError> {
        let users: Vec<i64> = pairs.iter().map(|(u, _)| u.get()).collect();
        let coupons: Vec<i64> = pairs.iter().map(|(_, c)| c.get()).collect();
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT u.user_id, u.coupon_id FROM user_coupons u
             JOIN UNNEST($1::bigint[], $2::bigint[]) AS p(u, c)
                 ON u.user_id = p.u AND u.coupon_id = p.c",
        )
        .bind(users)
        .bind(coupons)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        typed_pairs(rows)
    }

    /// One round trip: the campaigns' counts and the new coupons, as arrays.
    async fn issue_coupons(
        &mut self,
        issued: &[(CouponId, i64)],
        coupons: &[NewUserCouponRow],
    ) -> Result<Vec<UserCouponId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "WITH counted AS (
                 UPDATE coupons c SET issued_quantity = v.q
                 FROM UNNEST($1::bigint[], $2::bigint[]) AS v(id, q) WHERE c.id = v.id)
             INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at)
             SELECT u, c, i, e
             FROM UNNEST($3::bigint[], $4::bigint[], $5::timestamptz[], $6::timestamptz[])
                 WITH ORDINALITY AS n(u, c, i, e, n)
             ORDER BY n
             RETURNING id",
        )
        .bind(issued.iter().map(|(id, _)| id.get()).collect::<Vec<_>>())
        .bind(issued.iter().map(|&(_, q)| q).collect::<Vec<_>>())
        .bind(coupons.iter().map(|c| c.user.get()).collect::<Vec<_>>())
        .bind(coupons.iter().map(|c| c.coupon.get()).collect::<Vec<_>>())
        .bind(coupons.iter().map(|c| c.issued_at).collect::<Vec<_>>())
        .bind(coupons.iter().map(|c| c.expires_at).collect::<Vec<_>>())
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        // Identity values follow the insert order, so sorting them restores it.
        let mut ids = ids;
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
        .execute(&mut self.0)
        .await.map_err(db)?;
        Ok(())
    }
}
