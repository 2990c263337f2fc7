use sqlx::{AnyConnection, Row};

use super::Event;
use crate::db::{Backend, Db, DbError};

pub(super) const BATCH: i64 = 200;

pub(super) async fn insert(
    conn: &mut AnyConnection,
    topic: &str,
    payload: &str,
    now: i64,
) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO outbox (topic, payload, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(topic)
    .bind(payload)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

pub(super) async fn backlog(db: &Db) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
            .fetch_one(db.reader())
            .await?,
    )
}

/// The oldest undelivered events. On PostgreSQL, `lock` claims them for the caller's
/// transaction and skips rows another instance's relay holds.
pub(super) async fn pending(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<Vec<Event>, DbError> {
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT id, topic, payload FROM outbox WHERE delivered_at IS NULL ORDER BY id LIMIT $1{lock}"
    ))
    .bind(BATCH)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Event {
                id: row.try_get(0)?,
                topic: row.try_get(1)?,
                payload: row.try_get(2)?,
            })
        })
        .collect()
}

pub(super) async fn mark_delivered(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: i64,
) -> Result<(), DbError> {
    if ids.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (2..ids.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!(
        "UPDATE outbox SET delivered_at = $1 WHERE id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(now);
    for id in ids {
        query = query.bind(*id);
    }
    query.execute(conn).await?;
    Ok(())
}

pub(super) async fn prune(conn: &mut AnyConnection, cutoff: i64) -> Result<u64, DbError> {
    let result =
        sqlx::query("DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1")
            .bind(cutoff)
            .execute(conn)
            .await?;
    Ok(result.rows_affected())
}
