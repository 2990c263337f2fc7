use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::{instant, json_rows, micros, SqliteConn};
use commerce_domain::ids::{OrderId, UserId};
use commerce_domain::money::Won;
use commerce_domain::page::PageRequest;
use commerce_store::balance::{BalanceStore, ChargeRow, EntryKind, HistoryRow, PaymentRow};
use commerce_store::StoreError;

/// A history row and the balance it leaves, as `record` stores it.
struct Entry {
    user: UserId,
    amount: Won,
    balance_after: Won,
    order: Option<OrderId>,
    at: DateTime<Utc>,
}

impl SqliteConn {
    /// Stores entries decided against held balances, in order: a history row each, and each
    /// user's balance set to its `balance_after` (so the last one stays), the row created if
    /// missing. Returns the history ids in order. One cached statement per row: inside the
    /// batch's transaction that is cheaper than decoding the batch from JSON.
    fn record(
        &self,
        kind: EntryKind,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<Vec<i64>, StoreError> {
        entries
            .into_iter()
            .map(|e| {
                self.run(
                    "INSERT INTO balances (user_id, balance, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id) DO UPDATE
                         SET balance = excluded.balance, updated_at = excluded.updated_at",
                    params![e.user.get(), e.balance_after.get(), micros(e.at)],
                )?;
                self.append_history(&e, kind)
            })
            .collect()
    }

    fn append_history(&self, e: &Entry, kind: EntryKind) -> Result<i64, StoreError> {
        self.one(
            "INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            params![
                e.user.get(),
                kind,
                e.amount.get(),
                e.balance_after.get(),
                e.order.map(OrderId::get),
                micros(e.at)
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
        let entries = payments.iter().map(|p| Entry {
            user: p.user,
            amount: p.amount,
            balance_after: p.balance_after,
            order: Some(p.order),
            at: p.at,
        });
        self.record(EntryKind::Payment, entries)?;
        Ok(())
    }

    /// The single writer holds the whole database: reading the balances holds them.
    async fn hold_balances(&mut self, users: &[UserId]) -> Result<Vec<(UserId, Won)>, StoreError> {
        let mut held = Vec::with_capacity(users.len());
        for &user in users {
            held.push((user, self.balance(user).await?));
        }
        held.sort_unstable_by_key(|(user, _)| *user);
        Ok(held)
    }

    async fn record_charges(&mut self, charges: &[ChargeRow]) -> Result<Vec<i64>, StoreError> {
        let entries = charges.iter().map(|c| Entry {
            user: c.user,
            amount: c.amount,
            balance_after: c.balance_after,
            order: None,
            at: c.at,
        });
        self.record(EntryKind::Charge, entries)
    }

    /// The guard is in the statement; it subtracts from the maximum rather than adding to the
    /// balance, so it cannot overflow.
    async fn refund(
        &mut self,
        user: UserId,
        amount: Won,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Option<Won>, StoreError> {
        let balance: Option<i64> = self.optional(
            "INSERT INTO balances (user_id, balance, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id) DO UPDATE
                 SET balance = balances.balance + excluded.balance, updated_at = excluded.updated_at
                 WHERE balances.balance <= ?4 - excluded.balance
             RETURNING balance",
            params![user.get(), amount.get(), micros(now), i64::MAX],
            |r| r.get(0),
        )?;
        let Some(balance) = balance else {
            return Ok(None);
        };
        let refund = Entry {
            user,
            amount,
            balance_after: Won(balance),
            order: Some(order),
            at: now,
        };
        self.append_history(&refund, EntryKind::Refund)?;
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
            |r| r.try_into(),
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
