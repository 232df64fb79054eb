//! The WebSocket endpoint: `/ws/chat` taken over from HTTP ([`upgrade`]) and served by one
//! session task per connection.

mod catch_up;
mod close;
mod connection;
pub mod frame_limit;
mod heartbeat;
mod in_flight;
mod intake;
pub mod protocol;
mod rooms;
mod session;
pub mod upgrade;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Open a chat WebSocket. The frames it carries are described in the API description above.
#[utoipa::path(get, path = "/ws/chat", tag = "websocket",
    security(("bearer" = []), ("access_token" = []), ()),
    responses(
        (status = 101, description = "Switching Protocols: send ENTER, TALK and LEAVE frames"),
        (status = 400, description = "Not a WebSocket upgrade request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid token (in `Authorization: Bearer` or `?access_token=`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "This address holds as many connections as it may", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn chat_socket(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // Upgrade requests never get here: actix-http hands them, with their connection, to
    // `upgrade`. This answers a plain GET as the upgrade would have been answered.
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable);
    }
    state
        .upgrade_identity(req.headers(), req.query_string())
        .map_err(ApiError::Unauthorized)?;
    Err(ApiError::InvalidRequest(
        "expected a WebSocket upgrade request".to_owned(),
    ))
}
