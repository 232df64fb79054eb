//! Cross-cutting request handling: per-client rate limits for the REST API, tracking requests
//! in progress so shutdown can wait for them, and counting problem responses by code.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use governor::clock::{Clock, DefaultClock};

use crate::error::{ApiError, ProblemCode};
use crate::state::AppState;

/// Answers 429 (with `Retry-After`) once a client address is over its quota.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let over_quota = req.app_data::<web::Data<AppState>>().and_then(|state| {
        let limiter = state.http_limiter.as_ref()?;
        let client = state.client_ip(req.request())?;
        limiter.check_key(&client).err()
    });
    if let Some(not_until) = over_quota {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let refusal = ApiError::RateLimited(wait.as_secs().max(1)).error_response();
        return Ok(req.into_response(refusal).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Keeps each request in the shutdown's count until its response is ready.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match req.app_data::<web::Data<AppState>>().cloned() {
        Some(state) => state.tasks.track_future(next.call(req)).await,
        None => next.call(req).await,
    }
}

/// Counts every problem response under its `code`.
pub async fn count_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(req).await?;
    let code = response
        .response()
        .extensions()
        .get::<ProblemCode>()
        .copied();
    if let (Some(state), Some(ProblemCode(code))) = (state, code) {
        state.metrics.http_error(code);
    }
    Ok(response)
}
