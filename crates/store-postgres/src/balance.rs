use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::db;
use crate::PgConn;
use commerce_domain::ids::{OrderId, UserId};
use commerce_domain::money::Won;
use commerce_domain::page::PageRequest;
use commerce_store::balance::{BalanceStore, ChargeRow, EntryKind, HistoryRow, PaymentRow};
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

/// A history row decided against a locked balance.
struct Entry {
    user: UserId,
    amount: Won,
    balance_after: Won,
    order: Option<OrderId>,
    at: DateTime<Utc>,
}

/// One round trip for a batch's entries of one kind: the history rows, and each user's balance
/// set to its last `balance_after`. Returns the history ids in order.
async fn record(
    conn: &mut sqlx::PgConnection,
    kind: EntryKind,
    entries: &[Entry],
) -> Result<Vec<i64>, StoreError> {
    let column = |f: fn(&Entry) -> i64| entries.iter().map(f).collect::<Vec<_>>();
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "WITH entered AS (
             INSERT INTO balance_history
                 (user_id, kind, amount, balance_after, order_id, created_at)
             SELECT u, $5, a, b, o, at
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
                         $6::timestamptz[]) WITH ORDINALITY AS e(u, a, b, o, at, n)
             ORDER BY n
             RETURNING id),
         balanced AS (
             UPDATE balances SET balance = last.b, updated_at = last.at
             FROM (SELECT DISTINCT ON (u) u, b, at
                   FROM UNNEST($1::bigint[], $3::bigint[], $6::timestamptz[])
                       WITH ORDINALITY AS e(u, b, at, n)
                   ORDER BY u, n DESC) AS last
             WHERE balances.user_id = last.u)
         SELECT id FROM entered",
    )
    .bind(column(|e| e.user.get()))
    .bind(column(|e| e.amount.get()))
    .bind(column(|e| e.balance_after.get()))
    .bind(
        entries
            .iter()
            .map(|e| e.order.map(|o| o.get()))
            .collect::<Vec<_>>(),
    )
    .bind(kind)
    .bind(entries.iter().map(|e| e.at).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    // Drawn from the sequence as the rows went in, in order.
    ids.sort_unstable();
    Ok(ids)
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

    async fn record_payments(&mut self, payments: &[PaymentRow]) -> Result<(), StoreError> {
        let entries: Vec<Entry> = payments
            .iter()
            .map(|p| Entry {
                user: p.user,
                amount: p.amount,
                balance_after: p.balance_after,
                order: Some(p.order),
                at: p.at,
            })
            .collect();
        record(&mut self.0, EntryKind::Payment, &entries).await?;
        Ok(())
    }

    /// One round trip: a conflicting insert locks the rows there are, and creates (locked) the
    /// ones there are not, so a first charge racing another transaction's waits for it and
    /// then reads its balance; a bare `FOR UPDATE` would read 0 for a row committed meanwhile.
    async fn hold_balances(&mut self, users: &[UserId]) -> Result<Vec<(UserId, Won)>, StoreError> {
        let ids: Vec<i64> = users.iter().map(|u| u.get()).collect();
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "INSERT INTO balances (user_id, balance, updated_at)
             SELECT u, 0, now() FROM UNNEST($1::bigint[]) AS u ORDER BY u
             ON CONFLICT (user_id) DO UPDATE SET balance = balances.balance
             RETURNING user_id, balance",
        )
        .bind(ids)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        let mut held = rows
            .into_iter()
            .map(|(user, balance)| {
                let user = UserId::new(user).ok_or_else(|| StoreError::corrupt(user))?;
                Ok((user, Won(balance)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        held.sort_unstable_by_key(|(user, _)| *user);
        Ok(held)
    }

    async fn record_charges(&mut self, charges: &[ChargeRow]) -> Result<Vec<i64>, StoreError> {
        let entries: Vec<Entry> = charges
            .iter()
            .map(|c| Entry {
                user: c.user,
                amount: c.amount,
                balance_after: c.balance_after,
                order: None,
                at: c.at,
            })
            .collect();
        record(&mut self.0, EntryKind::Charge, &entries).await
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
