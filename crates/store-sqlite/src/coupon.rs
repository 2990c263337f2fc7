use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::product::json_ids;
use crate::{instant, json_rows, micros, SqliteConn};
use commerce_domain::ids::{CouponId, OrderId, UserCouponId, UserId};
use commerce_domain::page::PageRequest;
use commerce_store::coupon::{
    typed_pairs, CouponRow, CouponStore, DiscountType, HeldCouponRow, NewCouponRow,
    NewUserCouponRow, TermsRow, UserCouponRow,
};
use commerce_store::StoreError;

/// The campaign's columns, unqualified (for `RETURNING`) and as `c.` of a join, in the order
/// [`Coupon::read`] reads them.
macro_rules! coupon_columns {
    ($($p:literal)?) => {
        concat!(
            $($p,)? "id, ", $($p,)? "name, ", $($p,)? "discount_type, ", $($p,)? "discount_value, ",
            $($p,)? "min_order_amount, ", $($p,)? "total_quantity, ", $($p,)? "issued_quantity, ",
            $($p,)? "issue_starts_at, ", $($p,)? "issue_ends_at, ", $($p,)? "valid_days"
        )
    };
}

/// A campaign as stored, before its id and instants are checked.
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

impl Coupon {
    /// The campaign's columns from `first` on.
    fn read_from(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Coupon> {
        Ok(Coupon {
            id: r.get(first)?,
            name: r.get(first + 1)?,
            discount_type: r.get(first + 2)?,
            discount_value: r.get(first + 3)?,
            min_order_amount: r.get(first + 4)?,
            total_quantity: r.get(first + 5)?,
            issued_quantity: r.get(first + 6)?,
            issue_starts_at: r.get(first + 7)?,
            issue_ends_at: r.get(first + 8)?,
            valid_days: r.get(first + 9)?,
        })
    }

    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Coupon> {
        Coupon::read_from(r, 0)
    }
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

/// A user's coupon as stored: id, issued_at, expires_at, used_at, then the campaign.
struct UserCoupon {
    id: i64,
    issued_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    coupon: Coupon,
}

impl UserCoupon {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserCoupon> {
        Ok(UserCoupon {
            id: r.get(0)?,
            issued_at: r.get(1)?,
            expires_at: r.get(2)?,
            used_at: r.get(3)?,
            coupon: Coupon::read_from(r, 4)?,
        })
    }
}

impl TryFrom<UserCoupon> for UserCouponRow {
    type Error = StoreError;
    fn try_from(row: UserCoupon) -> Result<Self, StoreError> {
        let id = row.id;
        Ok(UserCouponRow {
            id: UserCouponId::new(id).ok_or_else(|| StoreError::corrupt(id))?,
            coupon: row.coupon.try_into()?,
            issued_at: instant(row.issued_at)?,
            expires_at: instant(row.expires_at)?,
            used_at: row.used_at.map(instant).transpose()?,
        })
    }
}

/// A held coupon as stored: id, user_id, used, expires_at, then the campaign's terms.
struct Held {
    id: i64,
    user_id: i64,
    used: bool,
    expires_at: i64,
    terms: TermsRow,
}

impl Held {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Held> {
        Ok(Held {
            id: r.get(0)?,
            user_id: r.get(1)?,
            used: r.get(2)?,
            expires_at: r.get(3)?,
            terms: TermsRow {
                discount_type: r.get(4)?,
                discount_value: r.get(5)?,
                min_order_amount: r.get(6)?,
            },
        })
    }
}

impl TryFrom<Held> for HeldCouponRow {
    type Error = StoreError;
    fn try_from(row: Held) -> Result<Self, StoreError> {
        Ok(HeldCouponRow {
            id: UserCouponId::new(row.id).ok_or_else(|| StoreError::corrupt(row.id))?,
            user_id: row.user_id,
            used: row.used,
            expires_at: instant(row.expires_at)?,
            terms: row.terms,
        })
    }
}

#[async_trait]
impl CouponStore for SqliteConn {
    async fn insert_coupon(
        &mut self,
        new: &NewCouponRow<'_>,
        now: DateTime<Utc>,
    ) -> Result<CouponRow, StoreError> {
        self.one(
            concat!(
                "INSERT INTO coupons (name, discount_type, discount_value, min_order_amount,
                     total_quantity, issue_starts_at, issue_ends_at, valid_days, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING ",
                coupon_columns!()
            ),
            params![
                new.name,
                new.discount_type,
                new.discount_value,
                new.min_order_amount,
                new.total_quantity,
                new.issue_starts_at.map(micros),
                new.issue_ends_at.map(micros),
                new.valid_days,
                micros(now)
            ],
            Coupon::read,
        )?
        .try_into()
    }

    async fn coupon(&mut self, id: CouponId) -> Result<Option<CouponRow>, StoreError> {
        self.optional(
            concat!("SELECT ", coupon_columns!(), " FROM coupons WHERE id = ?1"),
            [id.get()],
            Coupon::read,
        )?
        .map(CouponRow::try_from)
        .transpose()
    }

    async fn issuable_coupons(
        &mut self,
        now: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Vec<CouponRow>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                coupon_columns!(),
                " FROM coupons
                 WHERE id > ?1 AND issued_quantity < total_quantity
                   AND (issue_starts_at IS NULL OR issue_starts_at <= ?2)
                   AND (issue_ends_at IS NULL OR issue_ends_at > ?2)
                 ORDER BY id LIMIT ?3"
            ),
            [page.after.unwrap_or(0), micros(now), page.fetch_limit()],
            Coupon::read,
        )?
        .into_iter()
        .map(CouponRow::try_from)
        .collect()
    }

    async fn holds_coupon(&mut self, user: UserId, id: CouponId) -> Result<bool, StoreError> {
        let found: Option<i64> = self.optional(
            "SELECT id FROM user_coupons WHERE user_id = ?1 AND coupon_id = ?2",
            [user.get(), id.get()],
            |r| r.get(0),
        )?;
        Ok(found.is_some())
    }

    async fn user_coupons(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<UserCouponRow>, StoreError> {
        self.all(
            concat!(
                "SELECT u.id, u.issued_at, u.expires_at, u.used_at, ",
                coupon_columns!("c."),
                " FROM user_coupons u JOIN coupons c ON c.id = u.coupon_id
                 WHERE u.user_id = ?1 AND u.id < ?2 ORDER BY u.id DESC LIMIT ?3"
            ),
            [
                user.get(),
                page.after.unwrap_or(i64::MAX),
                page.fetch_limit(),
            ],
            UserCoupon::read,
        )?
        .into_iter()
        .map(UserCouponRow::try_from)
        .collect()
    }

    async fn lock_user_coupons(
        &mut self,
        ids: &[UserCouponId],
    ) -> Result<Vec<HeldCouponRow>, StoreError> {
        self.all(
            "SELECT u.id, u.user_id, u.used_at IS NOT NULL AS used, u.expires_at,
                 c.discount_type, c.discount_value, c.min_order_amount
             FROM user_coupons u JOIN coupons c ON c.id = u.coupon_id
             WHERE u.id IN (SELECT value FROM json_each(?1)) ORDER BY u.id",
            [json_ids(ids.iter().map(|id| id.get()))],
            Held::read,
        )?
        .into_iter()
        .map(HeldCouponRow::try_from)
        .collect()
    }

    async fn use_coupons(
        &mut self,
        uses: &[(UserCouponId, OrderId, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        self.run(
            "UPDATE user_coupons SET used_at = v.value ->> 2, order_id = v.value ->> 1
             FROM json_each(?1) AS v WHERE user_coupons.id = v.value ->> 0",
            [json_rows(uses.iter().map(|&(id, order, at)| {
                (id.get(), order.get(), micros(at))
            }))],
        )?;
        Ok(())
    }

    async fn lock_coupons(&mut self, ids: &[CouponId]) -> Result<Vec<CouponRow>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                coupon_columns!(),
                " FROM coupons WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"
            ),
            [json_ids(ids.iter().map(|id| id.get()))],
            Coupon::read,
        )?
        .into_iter()
        .map(CouponRow::try_from)
        .collect()
    }

    async fn holders(
        &mut self,
        pairs: &[(UserId, CouponId)],
    ) -> Result<Vec<(UserId, CouponId)>, StoreError> {
        let rows: Vec<(i64, i64)> = self.all(
            "SELECT u.user_id, u.coupon_id FROM json_each(?1) AS p
             JOIN user_coupons u ON u.user_id = p.value ->> 0 AND u.coupon_id = p.value ->> 1",
            [json_rows(pairs.iter().map(|(u, c)| (u.get(), c.get())))],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        typed_pairs(rows)
    }

    async fn issue_coupons(
        &mut self,
        issued: &[(CouponId, i64)],
        coupons: &[NewUserCouponRow],
    ) -> Result<Vec<UserCouponId>, StoreError> {
        self.run(
            "UPDATE coupons SET issued_quantity = v.value ->> 1
             FROM json_each(?1) AS v WHERE coupons.id = v.value ->> 0",
            [json_rows(issued.iter().map(|&(id, q)| (id.get(), q)))],
        )?;
        let mut ids: Vec<i64> = self.all(
            "INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at)
             SELECT c.value ->> 0, c.value ->> 1, c.value ->> 2, c.value ->> 3
             FROM json_each(?1) AS c ORDER BY c.key RETURNING id",
            [json_rows(coupons.iter().map(|c| {
                (
                    c.user.get(),
                    c.coupon.get(),
                    micros(c.issued_at),
                    micros(c.expires_at),
                )
            }))],
            |r| r.get(0),
        )?;
        // The one writer numbers rows in insert order, so sorting the ids restores it.
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| UserCouponId::new(id).ok_or_else(|| StoreError::corrupt(id)))
            .collect()
    }

    async fn release_coupon(&mut self, id: UserCouponId, order: OrderId) -> Result<(), StoreError> {
        self.run(
            "UPDATE user_coupons SET used_at = NULL, order_id = NULL WHERE id = ?1 AND order_id = ?2",
            [id.get(), order.get()],
        )?;
        Ok(())
    }
}
