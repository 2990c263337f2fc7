use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::config::Settings;
use crate::db::{Db, DbError};

/// Wakes the relay when a transaction that wrote events has committed, so delivery does not
/// wait for the next poll.
#[derive(Default)]
pub struct Signal(tokio::sync::Notify);

impl Signal {
    pub fn notify(&self) {
        self.0.notify_one();
    }

    pub async fn notified(&self) {
        self.0.notified().await
    }
}

pub enum Transport {
    InProcess,
}

impl Transport {
    pub async fn from_settings(_settings: &Settings) -> anyhow::Result<Transport> {
        Ok(Transport::InProcess)
    }
}

pub async fn relay(_state: Arc<AppState>, _transport: Transport, shutdown: CancellationToken) {
    shutdown.cancelled().await
}

/// Records an event in the caller's transaction; the relay delivers it after commit.
pub async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    topic: &str,
    payload: &impl serde::Serialize,
    now_micros: i64,
) -> Result<i64, DbError> {
    let payload = serde_json::to_string(payload)
        .map_err(|e| DbError::Corrupt(format!("event payload: {e}")))?;
    Ok(sqlx::query_scalar(
        "INSERT INTO outbox (topic, payload, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(topic)
    .bind(payload)
    .bind(now_micros)
    .fetch_one(conn)
    .await?)
}

pub async fn backlog(db: &Db) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
            .fetch_one(db.reader())
            .await?,
    )
}

pub async fn prune(_conn: &mut sqlx::AnyConnection, _now: i64) -> Result<u64, DbError> {
    Ok(0)
}
