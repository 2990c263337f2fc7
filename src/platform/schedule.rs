//! The daily job's scheduler (인기 상품 통계 데이터 저장 스케줄러).

use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::consumer::prune_processed;
use super::daily::catch_up;
use super::state::PlatformState;

const CHECK_EVERY: Duration = Duration::from_secs(60);

/// The scheduler: checks every minute whether a day is due, and forgets old processed events,
/// until `shutdown`.
pub async fn daily_job(state: PlatformState, shutdown: CancellationToken) {
    // 0 ("never") until the first check succeeds, so a scheduler failing from the start alerts.
    metrics::gauge!("daily_sales_last_success_timestamp_seconds").increment(0.0);
    loop {
        if let Err(error) = catch_up(&state).await {
            tracing::warn!(%error, "the daily sales job failed; it will try again");
        }
        match prune_processed(&state).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "forgot old processed events"),
            Err(error) => tracing::warn!(%error, "pruning processed events failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}
