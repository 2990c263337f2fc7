use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::db;
use crate::PgConn;
use commerce_domain::ids::{OrderId, UserId};
use commerce_domain::money::Won;
use commerce_domain::page::PageRequest;
use commerce_store::balance::{BalanceStore, EntryKind, HistoryRow, PaymentRow};
use commerce_store::StoreError;

#[derive(sqlx::FromRow)]
struct History {
    id: i64,
    kind: EntryKind,
    amount: i64,
    balance_after: i64,
    order_id: Option<i64>,
    created_at: DateTime<Utc>,
}

#[async_trait]
impl BalanceStore for PgConn {
    async fn balance(&mut self, user: UserId) -> Result<Won, StoreError> {
        let balance: Option<i64> =
            sqlx::query_scalar("SELECT balance FROM balances WHERE user_id = $1")
                .bind(user.get())
                .fetch_optional(&mut self.0)
                .await
                .map_err(db)?;
        Ok(Won(balance.unwrap_or(0)))
    }

    /// One round trip: the guarded change and its history row together. The guard subtracts
    /// from the maximum (>= amount) rather than adding to a balance that refunds may have taken
    /// anywhere, so it cannot overflow.
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
        let row: Option<(i64, i64)> = sqlx::query_as(
            "WITH changed AS (
                 INSERT INTO balances (user_id, balance, updated_at) VALUES ($1, $2, $4)
                 ON CONFLICT (user_id) DO UPDATE
                     SET balance = balances.balance + excluded.balance, updated_at = excluded.updated_at
                     WHERE balances.balance <= $3 - excluded.balance
                 RETURNING balance)
             INSERT INTO balance_history (user_id, kind, amount, balance_after, created_at)
             SELECT $1, $5, $2, balance, $4 FROM changed RETURNING balance_after, id",
        )
        .bind(user.get())
        .bind(amount.get())
        .bind(max_balance.get())
        .bind(now)
        .bind(EntryKind::Charge)
        .fetch_optional(&mut self.0)
        .await.map_err(db)?;
        Ok(row.map(|(balance, id)| (Won(balance), id)))
    }

    async fn lock_balances(&mut self, users: &[UserId]) -> Result<Vec<(UserId, Won)>, StoreError> {
        let ids: Vec<i64> = users.iter().map(|u| u.get()).collect();
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT user_id, balance FROM balances WHERE user_id = ANY($1)
             ORDER BY user_id FOR UPDATE",
        )
        .bind(ids)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(user, balance)| {
                let user = UserId::new(user).ok_or_else(|| StoreError::corrupt(user))?;
                Ok((user, Won(balance)))
            })
            .collect()
    }

    /// One round trip: the history rows and the balances, as arrays.
    async fn record_payments(&mut self, payments: &[PaymentRow]) -> Result<(), StoreError> {
        let column = |f: fn(&PaymentRow) -> i64| payments.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "WITH paid AS (
                 INSERT INTO balance_history
                     (user_id, kind, amount, balance_after, order_id, created_at)
                 SELECT u, $5, a, b, o, at
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
                             $6::timestamptz[]) WITH ORDINALITY AS p(u, a, b, o, at, n)
                 ORDER BY n)
             UPDATE balances SET balance = last.b, updated_at = last.at
             FROM (SELECT DISTINCT ON (u) u, b, at
                   FROM UNNEST($1::bigint[], $3::bigint[], $6::timestamptz[])
                       WITH ORDINALITY AS p(u, b, at, n)
                   ORDER BY u, n DESC) AS last
             WHERE balances.user_id = last.u",
        )
        .bind(column(|p| p.user.get()))
        .bind(column(|p| p.amount.get()))
        .bind(column(|p| p.balance_after.get()))
        .bind(column(|p| p.order.get()))
        .bind(EntryKind::Payment)
        .bind(payments.iter().map(|p| p.at).collect::<Vec<_>>())
        .execute(&mut self.0)
        .await
        .map_err(db)?;
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
            "WITH changed AS (
                 INSERT INTO balances (user_id, balance, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE
                     SET balance = balances.balance + excluded.balance, updated_at = excluded.updated_at
                     WHERE balances.balance <= $6 - excluded.balance
                 RETURNING balance)
             INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at)
             SELECT $1, $5, $2, balance, $4, $3 FROM changed RETURNING balance_after",
        )
        .bind(user.get())
        .bind(amount.get())
        .bind(now)
        .bind(order.get())
        .bind(EntryKind::Refund)
        .bind(i64::MAX)
        .fetch_optional(&mut self.0)
        .await.map_err(db)?;
        Ok(balance.map(Won))
    }

    async fn history(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let rows: Vec<History> = sqlx::query_as(
            "SELECT id, kind, amount, balance_after, order_id, created_at FROM balance_history
             WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(user.get())
        .bind(page.after.unwrap_or(i64::MAX))
        .bind(page.fetch_limit())
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|row| HistoryRow {
                id: row.id,
                kind: row.kind,
                amount: row.amount,
                balance_after: row.balance_after,
                order_id: row.order_id,
                created_at: row.created_at,
            })
            .collect())
    }
}
