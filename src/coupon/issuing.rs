//! Coupon issues decided together: the issues waiting at one moment lock their campaigns once
//! (in id order), are decided in arrival order, and are written with one statement for the
//! counts and one for the coupons (see `store::Shared`). So the first to arrive win, and a
//! refusal writes nothing.
//!
//! The rules are the ones of a single issue, in its order of checks: one per user, then the
//! campaign must exist, its window be open, and some remain.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

use super::errors::CouponError;
use super::model::UserCoupon;
use crate::idempotency::IdempotencyError;
use crate::ids::{CouponId, UserId};
use crate::store::coupon::{CouponRow, NewUserCouponRow, UserCouponRow};
use crate::store::{Conn, Row, Shared, StoreError, WriteKind};

/// One user asking for one coupon of a campaign.
pub(super) struct Issuing {
    pub user: UserId,
    pub coupon: CouponId,
    pub now: DateTime<Utc>,
}

#[async_trait]
impl Shared for Issuing {
    type Value = UserCoupon;
    type Error = CouponError;
    const KIND: WriteKind = WriteKind::CouponIssues;

    fn rows(&self, rows: &mut Vec<Row>) {
        rows.push(Row::Coupon(self.coupon.get()));
    }

    async fn run_all(
        conn: &mut dyn Conn,
        issues: &[&Issuing],
    ) -> Result<Vec<Result<UserCoupon, CouponError>>, StoreError> {
        let mut ids: Vec<CouponId> = issues.iter().map(|i| i.coupon).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut campaigns: HashMap<CouponId, CouponRow> = conn
            .lock_coupons(&ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let pairs: Vec<(UserId, CouponId)> = issues.iter().map(|i| (i.user, i.coupon)).collect();
        let mut held: HashSet<(UserId, CouponId)> =
            conn.holders(&pairs).await?.into_iter().collect();

        let decided: Vec<Result<(NewUserCouponRow, CouponRow), CouponError>> = issues
            .iter()
            .map(|issue| decide(issue, &mut campaigns, &mut held))
            .collect();

        let accepted: Vec<NewUserCouponRow> =
            decided.iter().flatten().map(|(row, _)| *row).collect();
        let mut touched: Vec<CouponId> = accepted.iter().map(|r| r.coupon).collect();
        touched.sort_unstable();
        touched.dedup();
        let counts: Vec<(CouponId, i64)> = touched
            .iter()
            .filter_map(|id| campaigns.get(id).map(|c| (*id, c.issued_quantity)))
            .collect();
        let mut new_ids = if accepted.is_empty() {
            Vec::new()
        } else {
            conn.issue_coupons(&counts, &accepted).await?
        }
        .into_iter();
        Ok(decided
            .into_iter()
            .map(|d| {
                let (row, campaign) = d?;
                let id = new_ids.next().ok_or_else(|| {
                    StoreError::corrupt("an issued coupon of the batch was not stored")
                })?;
                Ok(UserCoupon::at(
                    UserCouponRow {
                        id,
                        coupon: campaign,
                        issued_at: row.issued_at,
                        expires_at: row.expires_at,
                        used_at: None,
                    },
                    row.issued_at,
                ))
            })
            .collect())
    }
}

/// Issues take no `Idempotency-Key` (one per user is their own guard), so no key is ever
/// reused here; the pipeline's bound asks for the conversion all the same.
impl From<IdempotencyError> for CouponError {
    fn from(error: IdempotencyError) -> Self {
        CouponError::Invalid(error.to_string())
    }
}

/// Decides one issue against the campaigns as the issues before it left them, and applies
/// it: the new coupon and the campaign right after it.
fn decide(
    issue: &Issuing,
    campaigns: &mut HashMap<CouponId, CouponRow>,
    held: &mut HashSet<(UserId, CouponId)>,
) -> Result<(NewUserCouponRow, CouponRow), CouponError> {
    let (id, now) = (issue.coupon, issue.now);
    if held.contains(&(issue.user, id)) {
        return Err(CouponError::AlreadyIssued(id));
    }
    let campaign = campaigns.get_mut(&id).ok_or(CouponError::NotFound(id))?;
    if campaign.issue_starts_at.is_some_and(|starts| now < starts) {
        return Err(CouponError::NotIssuable(id, "issuing has not started"));
    }
    if campaign.issue_ends_at.is_some_and(|ends| now >= ends) {
        return Err(CouponError::NotIssuable(id, "issuing has ended"));
    }
    if campaign.issued_quantity >= campaign.total_quantity {
        return Err(CouponError::SoldOut(id));
    }
    campaign.issued_quantity += 1;
    held.insert((issue.user, id));
    let row = NewUserCouponRow {
        user: issue.user,
        coupon: id,
        issued_at: now,
        expires_at: now + chrono::Duration::days(campaign.valid_days),
    };
    Ok((row, campaign.clone()))
}
