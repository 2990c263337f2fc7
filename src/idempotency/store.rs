use super::Attempt;
use crate::db::DbError;
use sqlx::{AnyConnection, Row};

pub(super) struct Previous {
    pub fingerprint: String,
    pub outcome: String,
}

/// Claims the key for this transaction, or returns what an earlier, committed attempt stored.
/// On PostgreSQL a concurrent claim of the same key waits here until the first one commits.
pub(super) async fn claim(
    conn: &mut AnyConnection,
    attempt: &Attempt,
    now_micros: i64,
) -> Result<Option<Previous>, DbError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, outcome, created_at)
         VALUES ($1, $2, $3, '', $4) ON CONFLICT (user_id, key) DO NOTHING",
    )
    .bind(attempt.user.get())
    .bind(attempt.key.as_str())
    .bind(&attempt.fingerprint)
    .bind(now_micros)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT fingerprint, outcome FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(attempt.user.get())
    .bind(attempt.key.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(Previous {
        fingerprint: row.try_get(0)?,
        outcome: row.try_get(1)?,
    }))
}

pub(super) async fn record(
    conn: &mut AnyConnection,
    attempt: &Attempt,
    outcome: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE idempotency_keys SET outcome = $3 WHERE user_id = $1 AND key = $2")
        .bind(attempt.user.get())
        .bind(attempt.key.as_str())
        .bind(outcome)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn prune(conn: &mut AnyConnection, cutoff_micros: i64) -> Result<u64, DbError> {
    let result = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(cutoff_micros)
        .execute(conn)
        .await?;
    Ok(result.rows_affected())
}
