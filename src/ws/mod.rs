//! The WebSocket endpoints, `/ws/chat` and `/ws/stomp` (each also a SockJS base URL), taken
//! over from HTTP ([`upgrade`]) and served by one session task per connection.

pub mod dialect;
mod session;
mod transport;
pub mod upgrade;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Open a chat WebSocket. The frames it carries are described in the API description above.
///
/// Also a SockJS base URL: `GET /ws/chat/info`, the SockJS WebSocket transport at
/// `/ws/chat/{server}/{session}/websocket` (frames in `a[...]`, `o`, `h` every 25 s,
/// `c[code,"reason"]`), and `/ws/chat/websocket`, this endpoint again. SockJS's other
/// transports answer 404.
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
    not_an_upgrade(&req, &state, true)
}

/// Open a STOMP 1.2 WebSocket (1.1 and 1.0 too), for front ends written for Spring's STOMP
/// chat: subprotocols `v12.stomp`, `v11.stomp`, `v10.stomp`; `SUBSCRIBE` to
/// `/topic/rooms/{roomId}` (or `/sub/chat/room/{roomId}`, `/topic/chat/room/{roomId}`), with
/// `last-seq:N` to resume; `SEND` chat frames to `/app/rooms/{roomId}` or
/// `/pub/chat/message`; refusals to `/user/queue/errors`. Each `MESSAGE` carries the event's
/// JSON, as on `/ws/chat`, with `message-id` and `seq` headers. In identity mode the token comes
/// with the upgrade or in CONNECT (`Authorization: Bearer`, `passcode` or `token`).
///
/// Also a SockJS base URL, as `/ws/chat` is: `/ws/stomp/info`,
/// `/ws/stomp/{server}/{session}/websocket` and `/ws/stomp/websocket`.
#[utoipa::path(get, path = "/ws/stomp", tag = "websocket",
    security(("bearer" = []), ("access_token" = []), ()),
    responses(
        (status = 101, description = "Switching Protocols: send CONNECT, then SUBSCRIBE and SEND"),
        (status = 400, description = "Not a WebSocket upgrade request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: a token sent with the upgrade is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "This address holds as many connections as it may", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stomp_socket(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    not_an_upgrade(&req, &state, false)
}

/// Upgrade requests never get here: actix-http hands them, with their connection, to
/// [`upgrade`]. This answers a plain GET as the upgrade would have been answered.
fn not_an_upgrade(
    req: &HttpRequest,
    state: &AppState,
    token_required: bool,
) -> Result<HttpResponse, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable);
    }
    match state.upgrade_identity(req.headers(), req.query_string()) {
        Err(crate::identity::Refused::Missing) if !token_required => {}
        Err(refused) => return Err(ApiError::Unauthorized(refused)),
        Ok(_) => {}
    }
    Err(ApiError::InvalidRequest(
        "expected a WebSocket upgrade request".to_owned(),
    ))
}

/// SockJS's `/info` under a base, with its CORS preflight.
pub fn sockjs_info(path: &str) -> actix_web::Resource {
    web::resource(path)
        .route(web::get().to(transport::sockjs::info))
        .route(web::method(actix_web::http::Method::OPTIONS).to(transport::sockjs::info_options))
}
