use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::config::Settings;
use crate::db::{Db, DbError};

#[derive(Default)]
pub struct Signal {}

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
