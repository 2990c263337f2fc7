//! Balances and their history: what the balance service needs from a database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::StoreError;
use commerce_domain::ids::{OrderId, UserId};
use commerce_domain::money::Won;
use commerce_domain::page::PageRequest;

/// Why a balance changed; stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "UPPERCASE"))]
pub enum EntryKind {
    Charge,
    Payment,
    Refund,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub id: i64,
    pub kind: EntryKind,
    pub amount: i64,
    pub balance_after: i64,
    pub order_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A payment decided against a locked balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentRow {
    pub user: UserId,
    pub amount: Won,
    pub order: OrderId,
    pub balance_after: Won,
    pub at: DateTime<Utc>,
}

/// A charge decided against a held balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeRow {
    pub user: UserId,
    pub amount: Won,
    pub balance_after: Won,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait BalanceStore: Send {
    /// A user with no balance row has balance 0.
    async fn balance(&mut self, user: UserId) -> Result<Won, StoreError>;

    /// Adds `amount` back for the cancelled `order`, past the maximum balance if need be, and
    /// writes the REFUND row. Returns the balance after, or `None` (nothing written) when the
    /// balance would pass what 64 bits hold.
    async fn refund(
        &mut self,
        user: UserId,
        amount: Won,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Option<Won>, StoreError>;

    /// The balances of `users` that have one, locked until the transaction ends (PostgreSQL:
    /// `FOR UPDATE` in user order), in user order.
    async fn lock_balances(&mut self, users: &[UserId]) -> Result<Vec<(UserId, Won)>, StoreError>;

    /// Stores payments decided against locked balances, in order: a PAYMENT row each, and
    /// each user's balance set to its last `balance_after`.
    async fn record_payments(&mut self, payments: &[PaymentRow]) -> Result<(), StoreError>;

    /// The balance of each of `users` (0 for a user without a row), in user order, held until
    /// the transaction ends so that charges can be decided against them. PostgreSQL creates
    /// the missing rows to lock them too, so two first charges of a user wait for each other.
    async fn hold_balances(&mut self, users: &[UserId]) -> Result<Vec<(UserId, Won)>, StoreError>;

    /// Stores charges decided against balances held by [`BalanceStore::hold_balances`], in
    /// order: a CHARGE row each, and each user's balance set to its last `balance_after`.
    /// Returns the history ids, in order.
    async fn record_charges(&mut self, charges: &[ChargeRow]) -> Result<Vec<i64>, StoreError>;

    /// Newest first, strictly older than the page's cursor.
    async fn history(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<HistoryRow>, StoreError>;
}
