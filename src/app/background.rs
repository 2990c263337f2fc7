//! The work beside the requests: the outbox relay (handed the platform as its in-process
//! consumer), the webhook worker, the platform's JetStream consumer and daily job, and
//! housekeeping.

use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::state::AppState;
use crate::{idempotency, outbox, platform, webhook};

/// Starts every background task; each stops at `shutdown`.
pub(super) async fn start(
    state: &Arc<AppState>,
    shutdown: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let transport = Arc::new(state.settings.transport().await?);
    Ok(vec![
        tokio::spawn(outbox::relay(
            state.relay(),
            transport.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(webhook::run(state.webhook_worker()?, shutdown.clone())),
        tokio::spawn(platform::consume_jetstream(
            state.platform(),
            transport.jetstream(),
            shutdown.clone(),
        )),
        tokio::spawn(platform::daily_job(state.platform(), shutdown.clone())),
        tokio::spawn(housekeeping(state.clone(), shutdown)),
    ])
}

/// Prunes expired idempotency keys and delivered outbox events; keeps histograms bounded.
async fn housekeeping(state: Arc<AppState>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        state.metrics.run_upkeep();
        let now = state.clock.now();
        let pruned = state
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let keys = idempotency::prune(conn, now).await?;
                    let events = outbox::prune(conn, now).await?;
                    Ok::<_, crate::store::StoreError>((keys, events))
                })
            })
            .await;
        match pruned {
            Ok((keys, events)) if keys + events > 0 => tracing::info!(keys, events, "pruned"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "housekeeping failed"),
        }
    }
}
