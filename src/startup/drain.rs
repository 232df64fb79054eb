//! Draining and winding down: every step bounded, since storage or Redis may be unreachable.

use std::time::Duration;

use actix_server::ServerHandle;
use actix_web::web;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// How long the writer gets, once the server has stopped, to store what is queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Stops accepting, lets sessions and requests finish within the drain budget (sessions close
/// at once: shutdown cancelled their loops), then drops every connection left, such as idle
/// keep-alives, which would otherwise hold the process for their own timeouts.
pub(super) async fn drain(state: &AppState, handle: ServerHandle) {
    tracing::info!("draining: closing sessions, finishing requests");
    handle.pause().await;
    state.tasks.close();
    let budget = state.settings.shutdown_timeout();
    if tokio::time::timeout(budget, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = state.tasks.len(),
            "sessions and requests outlasted the drain budget"
        );
    }
    handle.stop(false).await;
}

/// After the last session: every step bounded, since storage or Redis may be unreachable.
pub(super) async fn wind_down(
    state: web::Data<AppState>,
    writer: JoinHandle<()>,
    publisher: Option<JoinHandle<()>>,
) {
    // Stores a LEAVE for any membership left (one whose LEAVE could not be stored) and
    // tells the other instances this one is gone, after every LEAVE queued so far.
    // Bounded: storage may be unreachable (the writer then refuses it at once, but a
    // reap under way waits on a network that went silent).
    let reaped = tokio::time::timeout(FLUSH_TIMEOUT, state.writer.reap(state.instance, None));
    if !matches!(reaped.await, Ok(Ok(_))) {
        tracing::warn!("could not deregister this instance; the others will reap it");
    }
    let store = state.store.clone();
    drop(state);
    if tokio::time::timeout(FLUSH_TIMEOUT, writer).await.is_err() {
        tracing::warn!("the storage writer did not finish in time");
    }
    if let Some(publisher) = publisher
        && tokio::time::timeout(FLUSH_TIMEOUT, publisher)
            .await
            .is_err()
    {
        tracing::warn!("publishing the last events to Redis did not finish in time");
    }
    if tokio::time::timeout(FLUSH_TIMEOUT, store.close())
        .await
        .is_err()
    {
        tracing::warn!("closing the storage connections did not finish in time");
    }
    tracing::info!("stopped");
}
