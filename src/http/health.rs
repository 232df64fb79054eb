//! Liveness, readiness and metrics.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// How long readiness waits for storage and the writer before calling them unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// Readiness: 503 while draining, while storage or the writer that stores every event does
/// not answer, or, with several instances, while Redis does not.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = String, content_type = "text/plain"),
        (status = 503, description = "Storage, its writer or the broker unreachable, or draining", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable);
    }
    if state
        .cluster
        .as_ref()
        .is_some_and(|cluster| !cluster.ready())
    {
        tracing::warn!("not ready: Redis does not answer");
        return Err(ApiError::Unavailable);
    }
    let reads = async { state.store.ping().await.map_err(ApiError::from) };
    let writes = async { state.writer.ping().await.map_err(ApiError::from) };
    match tokio::time::timeout(PING_TIMEOUT, futures_util::future::try_join(reads, writes)).await {
        Ok(Ok(_)) => Ok(healthz().await),
        Ok(Err(error)) => Err(error),
        Err(_) => {
            tracing::error!("storage or its writer did not answer a readiness ping in time");
            Err(ApiError::Unavailable)
        }
    }
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", body = String, content_type = "application/openmetrics-text")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let active = i64::try_from(state.hub.active_rooms()).unwrap_or(i64::MAX);
    state.metrics.rooms_active.set(active);
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}
