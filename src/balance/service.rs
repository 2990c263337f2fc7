use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use thiserror::Error;
use utoipa::ToSchema;

use super::store;
use crate::clock::{from_micros, Clock};
use crate::db::{Db, DbError, Transient};
use crate::idempotency::{self, Attempt, IdempotencyError, IdempotencyKey, Rejection};
use crate::ids::{OrderId, UserId};
use crate::money::Won;
use crate::page::{Page, PageRequest};

#[derive(Debug, Error, Serialize, Deserialize)]
pub enum BalanceError {
    #[error("amount must be a whole number of won between 1 and {max}, got {amount}")]
    InvalidAmount { amount: i64, max: i64 },
    #[error("charging {charge} would bring the balance from {balance} above the maximum of {max}")]
    LimitExceeded { balance: i64, charge: i64, max: i64 },
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[serde(skip)]
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Transient for BalanceError {
    fn is_transient(&self) -> bool {
        matches!(self, BalanceError::Db(e) if e.is_transient())
    }
}

impl Rejection for BalanceError {
    fn is_rejection(&self) -> bool {
        matches!(
            self,
            BalanceError::InvalidAmount { .. } | BalanceError::LimitExceeded { .. }
        )
    }
}

/// Per-charge and per-balance ceilings (settings).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_charge: Won,
    pub max_balance: Won,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    #[schema(value_type = i64, example = 7)]
    pub user_id: UserId,
    #[schema(example = 15000)]
    pub balance: Won,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChargeReceipt {
    #[schema(value_type = i64, example = 7)]
    pub user_id: i64,
    /// The balance after the charge.
    #[schema(example = 20000)]
    pub balance: i64,
    #[schema(example = 5000)]
    pub charged: i64,
    /// The CHARGE row written to the history.
    #[schema(example = 31)]
    pub history_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntryKind {
    Charge,
    Payment,
}

impl EntryKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            EntryKind::Charge => "CHARGE",
            EntryKind::Payment => "PAYMENT",
        }
    }

    pub(super) fn parse(raw: &str) -> Option<Self> {
        match raw {
            "CHARGE" => Some(EntryKind::Charge),
            "PAYMENT" => Some(EntryKind::Payment),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub id: i64,
    pub kind: EntryKind,
    pub amount: i64,
    pub balance_after: i64,
    pub order_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

pub async fn balance_of(db: &Db, user: UserId) -> Result<BalanceView, BalanceError> {
    let mut conn = db.reader().acquire().await.map_err(DbError::from)?;
    let balance = store::balance(&mut conn, user).await?;
    Ok(BalanceView {
        user_id: user,
        balance,
    })
}

/// Charges `amount` to the user's balance and writes the CHARGE history row, in one transaction.
pub async fn charge(
    db: &Db,
    clock: &dyn Clock,
    limits: Limits,
    user: UserId,
    amount: i64,
    key: Option<IdempotencyKey>,
) -> Result<ChargeReceipt, BalanceError> {
    let attempt = key.map(|key| Attempt::new(user, key, "POST /me/balance/charges", &amount));
    let now = crate::clock::to_micros(clock.now());
    db.write(move |conn| {
        let attempt = attempt.clone();
        Box::pin(async move {
            idempotency::once(conn, attempt.as_ref(), now, move |conn| {
                Box::pin(async move { credit(conn, limits, user, amount, now).await })
            })
            .await
        })
    })
    .await
    .and_then(|outcome| outcome)
}

async fn credit(
    conn: &mut AnyConnection,
    limits: Limits,
    user: UserId,
    amount: i64,
    now: i64,
) -> Result<ChargeReceipt, BalanceError> {
    if !(1..=limits.max_charge.get()).contains(&amount) {
        return Err(BalanceError::InvalidAmount {
            amount,
            max: limits.max_charge.get(),
        });
    }
    let charged = store::charge(conn, user, amount, limits.max_balance.get(), now).await?;
    let Some((balance, history_id)) = charged else {
        let balance = store::balance(conn, user).await?.get();
        return Err(BalanceError::LimitExceeded {
            balance,
            charge: amount,
            max: limits.max_balance.get(),
        });
    };
    Ok(ChargeReceipt {
        user_id: user.get(),
        balance,
        charged: amount,
        history_id,
    })
}

/// Debits `amount` for `order` inside the caller's transaction and writes the PAYMENT history
/// row. Returns the balance left, or `Err(balance)` with the current balance when it is short.
/// A zero amount (an order fully paid by a coupon) changes nothing.
pub async fn pay(
    conn: &mut AnyConnection,
    user: UserId,
    amount: Won,
    order: OrderId,
    now: i64,
) -> Result<Result<Won, Won>, DbError> {
    if amount == Won::ZERO {
        return Ok(Ok(store::balance(conn, user).await?));
    }
    match store::pay(conn, user, amount.get(), order.get(), now).await? {
        Some(balance) => Ok(Ok(Won(balance))),
        None => Ok(Err(store::balance(conn, user).await?)),
    }
}

pub async fn history(
    db: &Db,
    user: UserId,
    page: PageRequest,
) -> Result<Page<HistoryEntry>, BalanceError> {
    let mut conn = db.reader().acquire().await.map_err(DbError::from)?;
    let rows = store::history(&mut conn, user, page).await?;
    let entries = rows
        .into_iter()
        .map(|row| HistoryEntry {
            id: row.id,
            kind: row.kind,
            amount: row.amount,
            balance_after: row.balance_after,
            order_id: row.order_id,
            created_at: from_micros(row.created_at),
        })
        .collect();
    Ok(Page::from_rows(entries, page, |entry| entry.id))
}
