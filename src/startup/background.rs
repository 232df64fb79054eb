//! What runs beside the server until shutdown.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use tokio_util::sync::CancellationToken;

use crate::liveness;
use crate::memory;
use crate::state::AppState;
use crate::webhooks::{self, Sender};

/// How often idle entries are swept from the per-client rate limiters.
const LIMITER_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// What runs beside the server until shutdown: the limiters' sweep, giving memory back after
/// bursts, this instance's heartbeat, and (with identity and a webhook key) webhook delivery.
pub(super) fn spawn(state: &web::Data<AppState>, sender: Arc<Sender>) {
    let shutdown = state.shutdown.clone();
    tokio::spawn(sweep_limiters(state.clone(), shutdown.clone()));
    let metrics = state.metrics.clone();
    tokio::spawn(memory::release_after_bursts(metrics, shutdown.clone()));
    let heartbeat = liveness::Parts {
        liveness: state.liveness.clone(),
        writer: state.writer.clone(),
        timing: liveness::Timing::of(&state.settings),
        evictions: state.evictions.clone(),
        metrics: state.metrics.clone(),
    };
    tokio::spawn(liveness::run(heartbeat, shutdown.clone()));
    if let (Some(sealer), Some(_)) = (&state.sealer, &state.identity) {
        let settings = state.settings.webhooks.clone();
        let parts = webhooks::Parts {
            instance: state.instance,
            webhooks: state.webhooks.store.clone(),
            positions: Arc::new(state.writer.clone()),
            history: state.webhooks.history.clone(),
            sealer: sealer.clone(),
            sender,
            settings,
            metrics: state.metrics.clone(),
        };
        // Tracked, so the drain waits for its leases to be given up.
        state.tasks.spawn(webhooks::run(parts, shutdown));
    }
}

/// Forgets clients whose quotas have fully refilled, so the limiters' memory stays bounded.
async fn sweep_limiters(state: web::Data<AppState>, shutdown: CancellationToken) {
    let (http, ws) = (state.http_limiter.clone(), state.ws_limiter.clone());
    drop(state);
    if http.is_none() && ws.is_none() {
        return;
    }
    let mut ticks = tokio::time::interval(LIMITER_SWEEP_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                if let Some(http) = &http {
                    http.retain_recent();
                    http.shrink_to_fit();
                }
                if let Some(ws) = &ws {
                    ws.retain_recent();
                    ws.shrink_to_fit();
                }
            }
        }
    }
}
