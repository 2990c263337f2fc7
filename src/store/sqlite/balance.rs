use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{instant, micros};
use crate::ids::{OrderId, UserId};
use crate::money::Won;
use crate::page::PageRequest;
use crate::store::balance::{BalanceStore, EntryKind, HistoryRow};
use crate::store::StoreError;

#[derive(sqlx::FromRow)]
struct History {
    id: i64,
    kind: EntryKind,
    amount: i64,
    balance_after: i64,
    order_id: Option<i64>,
    created_at: i64,
}

impl TryFrom<History> for HistoryRow {
    type Error = StoreError;
    fn try_from(row: History) -> Result<Self, StoreError> {
        Ok(HistoryRow {
            id: row.id,
            kind: row.kind,
            amount: row.amount,
            balance_after: row.balance_after,
            order_id: row.order_id,
            created_at: instant(row.created_at)?,
        })
    }
}

async fn append_history(
    conn: &mut SqliteConnection,
    user: UserId,
    kind: EntryKind,
    amount: Won,
    balance_after: i64,
    order: Option<OrderId>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(user.get())
    .bind(kind)
    .bind(amount.get())
    .bind(balance_after)
    .bind(order.map(OrderId::get))
    .bind(micros(now))
    .fetch_one(conn)
    .await?)
}

#[async_trait]
impl BalanceStore for SqliteConnection {
    async fn balance(&mut self, user: UserId) -> Result<Won, StoreError> {
        let balance: Option<i64> =
            sqlx::query_scalar("SELECT balance FROM balances WHERE user_id = $1")
                .bind(user.get())
                .fetch_optional(&mut *self)
                .await?;
        Ok(Won(balance.unwrap_or(0)))
    }

    async fn charge(
        &mut self,
        user: UserId,
        amount: Won,
        max_balance: Won,
        now: DateTime<Utc>,
    ) -> Result<Option<(Won, i64)>, StoreError> {
        if amount > max_balance {
            return Ok(None);
        }
        // The guard is in the statement, so concurrent charges never pass the maximum.
        let balance: Option<i64> = sqlx::query_scalar(
            "INSERT INTO balances (user_id, balance, updated_at) VALUES ($1, $2, $4)
             ON CONFLICT (user_id) DO UPDATE
                 SET balance = balances.balance + excluded.balance, updated_at = excluded.updated_at
                 WHERE balances.balance + excluded.balance <= $3
             RETURNING balance",
        )
        .bind(user.get())
        .bind(amount.get())
        .bind(max_balance.get())
        .bind(micros(now))
        .fetch_optional(&mut *self)
        .await?;
        let Some(balance) = balance else {
            return Ok(None);
        };
        let id = append_history(self, user, EntryKind::Charge, amount, balance, None, now).await?;
        Ok(Some((Won(balance), id)))
    }

    async fn pay(
        &mut self,
        user: UserId,
        amount: Won,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Option<Won>, StoreError> {
        let balance: Option<i64> = sqlx::query_scalar(
            "UPDATE balances SET balance = balance - $2, updated_at = $3
             WHERE user_id = $1 AND balance >= $2 RETURNING balance",
        )
        .bind(user.get())
        .bind(amount.get())
        .bind(micros(now))
        .fetch_optional(&mut *self)
        .await?;
        let Some(balance) = balance else {
            return Ok(None);
        };
        let kind = EntryKind::Payment;
        append_history(self, user, kind, amount, balance, Some(order), now).await?;
        Ok(Some(Won(balance)))
    }

    async fn refund(
        &mut self,
        user: UserId,
        amount: Won,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Won, StoreError> {
        let balance: i64 = sqlx::query_scalar(
            "INSERT INTO balances (user_id, balance, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE
                 SET balance = balances.balance + excluded.balance, updated_at = excluded.updated_at
             RETURNING balance",
        )
        .bind(user.get())
        .bind(amount.get())
        .bind(micros(now))
        .fetch_one(&mut *self)
        .await?;
        let kind = EntryKind::Refund;
        append_history(self, user, kind, amount, balance, Some(order), now).await?;
        Ok(Won(balance))
    }

    async fn history(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        sqlx::query_as::<_, History>(
            "SELECT id, kind, amount, balance_after, order_id, created_at FROM balance_history
             WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(user.get())
        .bind(page.after.unwrap_or(i64::MAX))
        .bind(page.fetch_limit())
        .fetch_all(&mut *self)
        .await?
        .into_iter()
        .map(HistoryRow::try_from)
        .collect()
    }
}
