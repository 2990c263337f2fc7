use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;

mod event;

pub use event::{OrderPaid, SoldItem, ORDER_PAID};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
}

pub struct Platform {}

impl Platform {
    pub fn new(_cache_ttl: Duration) -> Self {
        Platform {}
    }
}

pub async fn daily_job(_state: Arc<AppState>, shutdown: CancellationToken) {
    shutdown.cancelled().await
}
