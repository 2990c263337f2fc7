use sqlx::{AnyConnection, Row};

use super::service::EntryKind;
use crate::db::{is_postgres, DbError};
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

const CREDIT: &str = "INSERT INTO balances (user_id, balance, updated_at) VALUES ($1, $2, $4)
    ON CONFLICT (user_id) DO UPDATE
        SET balance = balances.balance + excluded.balance, updated_at = excluded.updated_at
        WHERE balances.balance + excluded.balance <= $3
    RETURNING balance";

const DEBIT: &str = "UPDATE balances SET balance = balance - $2, updated_at = $3
    WHERE user_id = $1 AND balance >= $2
    RETURNING balance";

/// Adds `amount` unless the balance would pass `max_balance`, and writes the CHARGE row.
/// Returns (balance after, history id), or `None` when the guard refused. The guard is in the
/// statement, so concurrent charges never lose an update.
pub(super) async fn charge(
    conn: &mut AnyConnection,
    user: UserId,
    amount: i64,
    max_balance: i64,
    now: i64,
) -> Result<Option<(i64, i64)>, DbError> {
    if amount > max_balance {
        return Ok(None);
    }
    if is_postgres(conn) {
        // One round trip: the guarded change and its history row together.
        let row = sqlx::query(&format!(
            "WITH changed AS ({CREDIT})
             INSERT INTO balance_history (user_id, kind, amount, balance_after, created_at)
             SELECT $1, 'CHARGE', $2, balance, $4 FROM changed RETURNING balance_after, id"
        ))
        .bind(user.get())
        .bind(amount)
        .bind(max_balance)
        .bind(now)
        .fetch_optional(conn)
        .await?;
        return Ok(row
            .map(|r| r.try_get(0).and_then(|b| Ok((b, r.try_get(1)?))))
            .transpose()?);
    }
    let balance: Option<i64> = sqlx::query_scalar(CREDIT)
        .bind(user.get())
        .bind(amount)
        .bind(max_balance)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(balance) = balance else {
        return Ok(None);
    };
    let id = append_history(conn, user, EntryKind::Charge, amount, balance, None, now).await?;
    Ok(Some((balance, id)))
}

/// Subtracts `amount` for `order` if the balance covers it, and writes the PAYMENT row.
/// Returns the balance after, or `None` when the balance is short.
pub(super) async fn pay(
    conn: &mut AnyConnection,
    user: UserId,
    amount: i64,
    order: i64,
    now: i64,
) -> Result<Option<i64>, DbError> {
    if is_postgres(conn) {
        return Ok(sqlx::query_scalar(&format!(
            "WITH changed AS ({DEBIT})
             INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, created_at)
             SELECT $1, 'PAYMENT', $2, balance, $4, $3 FROM changed RETURNING balance_after"
        ))
        .bind(user.get())
        .bind(amount)
        .bind(now)
        .bind(order)
        .fetch_optional(conn)
        .await?);
    }
    let balance: Option<i64> = sqlx::query_scalar(DEBIT)
        .bind(user.get())
        .bind(amount)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(balance) = balance else {
        return Ok(None);
    };
    append_history(
        conn,
        user,
        EntryKind::Payment,
        amount,
        balance,
        Some(order),
        now,
    )
    .await?;
    Ok(Some(balance))
}

async fn append_history(
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
