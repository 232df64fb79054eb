//! Cross-cutting request handling: per-address rate limits for the REST API, and counting
//! problem responses by code for `/metrics`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use governor::clock::{Clock, DefaultClock};

use crate::error::{ApiError, ProblemCode};
use crate::state::AppState;

/// Answers 429 (with `Retry-After`) once an address is over its quota.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limiter = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.http_limiter.clone());
    if let (Some(limiter), Some(peer)) = (limiter, req.peer_addr())
        && let Err(not_until) = limiter.check_key(&peer.ip())
    {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let refusal = ApiError::RateLimited(wait.as_secs().max(1)).error_response();
        return Ok(req.into_response(refusal).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
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
