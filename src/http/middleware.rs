//! Cross-cutting request handling: who calls the REST API and how often (the `/api/` guard),
//! tracking requests in progress so shutdown can wait for them, and counting problem
//! responses by code.

use std::future::{Ready, ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use governor::clock::{Clock, DefaultClock};

use crate::error::{ApiError, ProblemCode};
use crate::identity::{Caller, Identity, Refused};
use crate::state::AppState;

/// Every `/api/` request: finds out who calls (in identity mode a valid bearer token is
/// required), then applies the rate limit, counted per identity when there is one and per
/// address otherwise, so refused tokens count against their address. A request over its quota
/// gets 429 with `Retry-After`, one without a valid token 401; the rest carry their [`Caller`].
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::Unavailable.into());
    };
    let caller = state.caller(req.headers());
    let identity = match &caller {
        Ok(Caller::Signed(identity)) => Some(identity),
        _ => None,
    };
    let refusal = match (over_quota(&state, req.request(), identity), caller) {
        (Some(limited), _) => limited,
        (None, Err(refused)) => ApiError::Unauthorized(refused),
        (None, Ok(caller)) => {
            req.extensions_mut().insert(caller);
            let response = next.call(req).await?;
            return Ok(response.map_into_left_body());
        }
    };
    Ok(req
        .into_response(refusal.error_response())
        .map_into_right_body())
}

/// The 429 for a client over its REST quota, if it is.
fn over_quota(
    state: &AppState,
    req: &HttpRequest,
    identity: Option<&Identity>,
) -> Option<ApiError> {
    let limiter = state.http_limiter.as_ref()?;
    let client = state.client_key(req.peer_addr(), req.headers(), identity)?;
    let not_until = limiter.check_key(&client).err()?;
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    Some(ApiError::RateLimited(wait.as_secs().max(1)))
}

/// The caller the `/api/` guard let in. Outside the guard there is none, and nothing is
/// allowed.
impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = req.extensions().get::<Caller>().cloned();
        ready(caller.ok_or(ApiError::Unauthorized(Refused::Missing)))
    }
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
