use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{instant, json_rows, micros};
use crate::ids::{OrderId, UserId};
use crate::money::Won;
use crate::page::PageRequest;
use crate::store::balance::{BalanceStore, EntryKind, HistoryRow, PaymentRow};
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
        // The guard is in the statement, so concurrent charges never pass the maximum; it
        // subtracts from the maximum (>= amount) rather than adding to a balance that refunds
        // may have taken anywhere, so it cannot overflow.
        let balance: Option<i64> = sqlx::query_scalar(
            "INSERT INTO balances (user_id, balance, updated_at) VALUES ($1, $2, $4)
             ON CONFLICT (user_id) DO UPDATE
                 SET balance = balances.balance + excluded.balance, updated_at = excluded.updated_at
                 WHERE balances.balance <= $3 - excluded.balance
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

    async fn lock_balances(&mut self, users: &[UserId]) -> Result<Vec<(UserId, Won)>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT user_id, balance FROM balances
             WHERE user_id IN (SELECT value FROM json_each($1)) ORDER BY user_id",
        )
        .bind(json_rows(users.iter().map(|u| u.get())))
        .fetch_all(&mut *self)
        .await?;
        rows.into_iter()
            .map(|(user, balance)| {
                let user = UserId::new(user).ok_or_else(|| StoreError::corrupt(user))?;
                Ok((user, Won(balance)))
            })
            .collect()
    }

    async fn record_payments(&mut self, payments: &[PaymentRow]) -> Result<(), StoreError> {
        let rows = json_rows(payments.iter().map(|p| {
            (
                p.user.get(),
                p.amount.get(),
                p.balance_after.get(),
                p.order.get(),
                micros(p.at),
            )
        }));
        sqlx::query(
            "INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at)
             SELECT p.value ->> 0, $2, p.value ->> 1, p.value ->> 2, p.value ->> 3, p.value ->> 4
             FROM json_each($1) AS p ORDER BY p.key",
        )
        .bind(&rows)
        .bind(EntryKind::Payment)
        .execute(&mut *self)
        .await?;
        // Each user's last payment of the batch holds the balance after all of them (with
        // MAX, SQLite takes the bare columns from the row that has the maximum).
        sqlx::query(
            "UPDATE balances SET balance = last.b, updated_at = last.at
             FROM (SELECT p.value ->> 0 AS u, p.value ->> 2 AS b, p.value ->> 4 AS at,
                          MAX(p.key)
                   FROM json_each($1) AS p GROUP BY p.value ->> 0) AS last
             WHERE balances.user_id = last.u",
        )
        .bind(&rows)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn refund(
        &mut self,
        user: UserId,
        amount: Won,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Option<Won>, StoreError> {
        let balance: Option<i64> = sqlx::query_scalar(
            "INSERT INTO balances (user_id, balance, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE
                 SET balance = balances.balance + excluded.balance, updated_at = excluded.updated_at
                 WHERE balances.balance <= $4 - excluded.balance
             RETURNING balance",
        )
        .bind(user.get())
        .bind(amount.get())
        .bind(micros(now))
        .bind(i64::MAX)
        .fetch_optional(&mut *self)
        .await?;
        let Some(balance) = balance else {
            return Ok(None);
        };
        let kind = EntryKind::Refund;
        append_history(self, user, kind, amount, balance, Some(order), now).await?;
        Ok(Some(Won(balance)))
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
