//! The WebSocket endpoint: upgrades `/ws/chat` and hands the connection to a session task.

mod catch_up;
mod close;
pub mod frame_limit;
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
use crate::identity::Identity;
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
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable);
    }
    let identity = state
        .upgrade_identity(&req)
        .map_err(ApiError::Unauthorized)?;
    let (response, ws, stream) = actix_ws::handle(&req, body)
        .map_err(|_| ApiError::InvalidRequest("expected a WebSocket upgrade request".to_owned()))?;
    let connection = open_connection(&state, &req, identity.as_ref())?;
    let max = state.settings.max_frame_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let id = state.next_session_id();
    let span = match &identity {
        Some(identity) => tracing::info_span!("session", id, user = identity.subject()),
        None => tracing::info_span!("session", id),
    };
    let tasks = state.tasks.clone();
    let client = session::Client {
        identity,
        connection,
    };
    let session = session::Session::run(state.into_inner(), id, ws, stream, client);
    actix_web::rt::spawn(tasks.track_future(session.instrument(span)));
    Ok(response)
}

/// Counts the connection against its client's cap, when there is one.
fn open_connection(
    state: &AppState,
    req: &HttpRequest,
    identity: Option<&Identity>,
) -> Result<Option<OpenConnection>, ApiError> {
    let (Some(cap), Some(client)) = (&state.connection_cap, state.client_key(req, identity)) else {
        return Ok(None);
    };
    cap.open(client)
        .map(Some)
        .ok_or(ApiError::TooManyConnections(cap.per_address()))
}
