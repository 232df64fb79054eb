//! The WebSocket endpoint: upgrades `/ws/chat` and hands the connection to a [`session`] task.

mod close;
mod membership;
pub mod protocol;
pub mod session;

use actix_web::{HttpRequest, HttpResponse, web};
use tracing::Instrument;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Open a chat WebSocket. The frames it carries are described in the API description above.
#[utoipa::path(get, path = "/ws/chat", tag = "websocket",
    responses(
        (status = 101, description = "Switching Protocols: send ENTER, TALK and LEAVE frames"),
        (status = 400, description = "Not a WebSocket upgrade request", body = Problem, content_type = "application/problem+json"),
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
    let max = state.settings.max_frame_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let id = state.next_session_id();
    let span = tracing::info_span!("session", id);
    actix_web::rt::spawn(
        session::Session::run(state.into_inner(), id, ws, stream).instrument(span),
    );
    Ok(response)
}
