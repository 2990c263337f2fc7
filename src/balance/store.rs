use sqlx::{AnyConnection, Row};

use super::service::EntryKind;
use crate::db::DbError;
use crate::ids::UserId;
use crate::money::Won;
use crate::page::PageRequest;

/// A user with no balance row has balance 0.
pub(super) async fn balance(conn: &mut AnyConnection, user: UserId) -> Result<Won, DbError> {
    let balance: Option<i64> =
        sqlx::query_scalar("SELECT balance FROM balances WHERE user_id = $1")
            .bind(user.get())
            .fetch_optional(conn)
            .await?;
    Ok(Won(balance.unwrap_or(0)))
}

/// Adds `amount` unless the result would pass `max_balance`; returns the new balance, or
/// `None` when the guard refused. One statement, so concurrent charges never lose an update.
pub(super) async fn credit(
    conn: &mut AnyConnection,
    user: UserId,
    amount: i64,
    max_balance: i64,
    now: i64,
) -> Result<Option<i64>, DbError> {
    if amount > max_balance {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO balances (user_id, balance, updated_at) VALUES ($1, $2, $4)
         ON CONFLICT (user_id) DO UPDATE
             SET balance = balances.balance + excluded.balance, updated_at = excluded.updated_at
             WHERE balances.balance + excluded.balance <= $3
         RETURNING balance",
    )
    .bind(user.get())
    .bind(amount)
    .bind(max_balance)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

/// Subtracts `amount` if the balance covers it; returns the new balance.
pub(super) async fn debit(
    conn: &mut AnyConnection,
    user: UserId,
    amount: i64,
    now: i64,
) -> Result<Option<i64>, DbError> {
    Ok(sqlx::query_scalar(
        "UPDATE balances SET balance = balance - $2, updated_at = $3
         WHERE user_id = $1 AND balance >= $2
         RETURNING balance",
    )
    .bind(user.get())
    .bind(amount)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

pub(super) async fn append_history(
    conn: &mut AnyConnection,
    user: UserId,
    kind: EntryKind,
    amount: i64,
    balance_after: i64,
    order_id: Option<i64>,
    now: i64,
) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(user.get())
    .bind(kind.as_str())
    .bind(amount)
    .bind(balance_after)
    .bind(order_id)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

pub(super) struct HistoryRow {
    pub id: i64,
    pub kind: EntryKind,
    pub amount: i64,
    pub balance_after: i64,
    pub order_id: Option<i64>,
    pub created_at: i64,
}

/// Newest first, strictly older than the cursor.
pub(super) async fn history(
    conn: &mut AnyConnection,
    user: UserId,
    page: PageRequest,
) -> Result<Vec<HistoryRow>, DbError> {
    let rows = sqlx::query(
        "SELECT id, kind, amount, balance_after, order_id, created_at FROM balance_history
         WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(user.get())
    .bind(page.after.unwrap_or(i64::MAX))
    .bind(page.fetch_limit())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            Ok(HistoryRow {
                id: row.try_get("id")?,
                kind: EntryKind::parse(&kind)
                    .ok_or_else(|| DbError::Corrupt(format!("history kind {kind}")))?,
                amount: row.try_get("amount")?,
                balance_after: row.try_get("balance_after")?,
                order_id: row.try_get("order_id")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}
