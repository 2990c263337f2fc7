use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::{instant, json_rows, micros, SqliteConn};
use commerce_domain::ids::{OrderId, UserId};
use commerce_domain::money::Won;
use commerce_domain::page::PageRequest;
use commerce_store::balance::{BalanceStore, EntryKind, HistoryRow, PaymentRow};
use commerce_store::StoreError;

/// Adds to a balance, creating it at the amount, unless it would pass `?3`. The guard is in the
/// statement; it subtracts from the maximum (>= amount) rather than adding to a balance that
/// refunds may have taken anywhere, so it cannot overflow.
const ADD: &str = "INSERT INTO balances (user_id, balance, updated_at) VALUES (?1, ?2, ?4)
     ON CONFLICT (user_id) DO UPDATE
         SET balance = balances.balance + excluded.balance, updated_at = excluded.updated_at
         WHERE balances.balance <= ?3 - excluded.balance
     RETURNING balance";

impl SqliteConn {
    fn add(
        &self,
        user: UserId,
        amount: Won,
        max: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        self.optional(
            ADD,
            params![user.get(), amount.get(), max, micros(now)],
            |r| r.get(0),
        )
    }

    fn append_history(
        &self,
        user: UserId,
        kind: EntryKind,
        amount: Won,
        balance_after: i64,
        order: Option<OrderId>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.one(
            "INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            params![
                user.get(),
                kind,
                amount.get(),
                balance_after,
                order.map(OrderId::get),
                micros(now)
            ],
            |r| r.get(0),
        )
    }
}

#[async_trait]
impl BalanceStore for SqliteConn {
    async fn balance(&mut self, user: UserId) -> Result<Won, StoreError> {
        let balance: Option<i64> = self.optional(
            "SELECT balance FROM balances WHERE user_id = ?1",
            [user.get()],
            |r| r.get(0),
        )?;
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
        let Some(balance) = self.add(user, amount, max_balance.get(), now)? else {
            return Ok(None);
        };
        let id = self.append_history(user, EntryKind::Charge, amount, balance, None, now)?;
        Ok(Some((Won(balance), id)))
    }

    async fn lock_balances(&mut self, users: &[UserId]) -> Result<Vec<(UserId, Won)>, StoreError> {
        let rows: Vec<(i64, i64)> = self.all(
            "SELECT user_id, balance FROM balances
             WHERE user_id IN (SELECT value FROM json_each(?1)) ORDER BY user_id",
            [json_rows(users.iter().map(|u| u.get()))],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
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
        self.run(
            "INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at)
             SELECT p.value ->> 0, ?2, p.value ->> 1, p.value ->> 2, p.value ->> 3, p.value ->> 4
             FROM json_each(?1) AS p ORDER BY p.key",
            params![rows, EntryKind::Payment],
        )?;
        // Each user's last payment of the batch holds the balance after all of them (with
        // MAX, SQLite takes the bare columns from the row that has the maximum).
        self.run(
            "UPDATE balances SET balance = last.b, updated_at = last.at
             FROM (SELECT p.value ->> 0 AS u, p.value ->> 2 AS b, p.value ->> 4 AS at,
                          MAX(p.key)
                   FROM json_each(?1) AS p GROUP BY p.value ->> 0) AS last
             WHERE balances.user_id = last.u",
            [rows],
        )?;
        Ok(())
    }

    async fn refund(
        &mut self,
        user: UserId,
        amount: Won,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Option<Won>, StoreError> {
        let Some(balance) = self.add(user, amount, i64::MAX, now)? else {
            return Ok(None);
        };
        let kind = EntryKind::Refund;
        self.append_history(user, kind, amount, balance, Some(order), now)?;
        Ok(Some(Won(balance)))
    }

    async fn history(
        &mut self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = self.all(
            "SELECT id, kind, amount, balance_after, order_id, created_at FROM balance_history
             WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            params![
                user.get(),
                page.after.unwrap_or(i64::MAX),
                page.fetch_limit()
            ],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )?;
        rows.into_iter()
            .map(|(id, kind, amount, balance_after, order_id, at)| {
                Ok(HistoryRow {
                    id,
                    kind,
                    amount,
                    balance_after,
                    order_id,
                    created_at: instant(at)?,
                })
            })
            .collect()
    }
}
