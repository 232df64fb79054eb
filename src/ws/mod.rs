//! The WebSocket endpoint: upgrades `/ws/chat` and hands the connection to a session task.

mod catch_up;
mod close;
mod heartbeat;
mod in_flight;
mod intake;
pub mod protocol;
mod rooms;
mod session;
mod socket;

use actix_web::{HttpRequest, HttpResponse, web};
use tracing::Instrument;

use crate::clients::OpenConnection;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Open a chat WebSocket. The frames it carries are described in the API description above.
#[utoipa::path(get, path = "/ws/chat", tag = "websocket",
    responses(
        (status = 101, description = "Switching Protocols: send ENTER, TALK and LEAVE frames"),
        (status = 400, description = "Not a WebSocket upgrade request", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "This address holds as many connections as it may", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn chat_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable);
    }
    let (response, ws, stream) = actix_ws::handle(&req, body)
        .map_err(|_| ApiError::InvalidRequest("expected a WebSocket upgrade request".to_owned()))?;
    let connection = open_connection(&state, &req)?;
    let max = state.settings.max_frame_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let id = state.next_session_id();
    let tasks = state.tasks.clone();
    let session = session::Session::run(state.into_inner(), id, ws, stream, connection);
    actix_web::rt::spawn(
        tasks.track_future(session.instrument(tracing::info_span!("session", id))),
    );
    Ok(response)
}

/// Counts the connection against its client address's cap, when there is one.
fn open_connection(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<OpenConnection>, ApiError> {
    let (Some(cap), Some(client)) = (&state.connection_cap, state.client_ip(req)) else {
        return Ok(None);
    };
    cap.open(client)
        .map(Some)
        .ok_or(ApiError::TooManyConnections(cap.per_address()))
}
