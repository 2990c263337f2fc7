use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use thiserror::Error;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::idempotency::IdempotencyError;
use crate::ids::UserId;
use crate::money::Won;
use crate::page::{Page, PageRequest};
pub use crate::store::balance::EntryKind;
use crate::store::balance::HistoryRow;
use crate::store::{Db, StoreError};

#[derive(Debug, Error)]
pub enum BalanceError {
    #[error("amount must be a whole number of won between 1 and {max}, got {amount}")]
    InvalidAmount { amount: i64, max: i64 },
    #[error("charging {charge} would bring the balance from {balance} above the maximum of {max}")]
    LimitExceeded { balance: i64, charge: i64, max: i64 },
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] StoreError),
}

crate::store::store_fault!(BalanceError);

/// What the balance's handlers use.
#[derive(Clone)]
pub struct BalanceState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
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

#[derive(Debug, Serialize, ToSchema)]
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

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub id: i64,
    pub kind: EntryKind,
    pub amount: i64,
    pub balance_after: i64,
    /// The order paid or refunded; null for a charge.
    #[schema(required = true)]
    pub order_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

pub async fn balance_of(db: &Db, user: UserId) -> Result<BalanceView, BalanceError> {
    let balance = db.read().await?.balance(user).await?;
    Ok(BalanceView {
        user_id: user,
        balance,
    })
}

pub async fn history(
    db: &Db,
    user: UserId,
    page: PageRequest,
) -> Result<Page<HistoryEntry>, BalanceError> {
    let rows = db.read().await?.history(user, page).await?;
    let entries = rows.into_iter().map(HistoryEntry::from).collect();
    Ok(Page::from_rows(entries, page, |entry| entry.id))
}

impl From<HistoryRow> for HistoryEntry {
    fn from(row: HistoryRow) -> Self {
        HistoryEntry {
            id: row.id,
            kind: row.kind,
            amount: row.amount,
            balance_after: row.balance_after,
            order_id: row.order_id,
            created_at: row.created_at,
        }
    }
}
