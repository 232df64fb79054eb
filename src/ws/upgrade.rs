//! Taking a WebSocket over from HTTP. actix-http hands every upgrade request here, with its
//! connection: a request for the WebSocket endpoint is checked (draining, identity, the
//! handshake, the per-client connection cap) and answered `101`, and its session owns the TCP
//! stream from then on; any other gets the problem document the API would give. Owning the
//! stream, a session writes many frames per system call and closes the connection as soon as
//! the closing handshake is done, rather than when HTTP's timers say so.

use std::convert::Infallible;
use std::sync::Arc;

use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::h1::{self, Message};
use actix_http::header::HeaderMap;
use actix_http::{ConnectionType, Request, Response, StatusCode, ws};
use actix_service::{ServiceFactory, fn_service};
use actix_web::ResponseError;
use futures_util::SinkExt;
use tokio::net::TcpStream;
use tracing::Instrument;

use super::connection::Incoming;
use super::session::{Client, Session};
use crate::clients::OpenConnection;
use crate::error::ApiError;
use crate::http::request_span::loggable_target;
use crate::identity::Identity;
use crate::state::AppState;

/// An upgrade request and the connection it came on.
pub type Upgrade = (Request, Framed<TcpStream, h1::Codec>);

/// The path of the WebSocket endpoint.
pub const CHAT: &str = "/ws/chat";

/// The service actix-http runs for each upgrade request.
pub fn service(
    state: Arc<AppState>,
) -> impl ServiceFactory<Upgrade, Config = (), Response = (), Error = Infallible, InitError = ()> + Clone
{
    fn_service(move |(request, framed): Upgrade| {
        let state = state.clone();
        async move {
            let tasks = state.tasks.clone();
            tasks.track_future(take_over(state, request, framed)).await;
            Ok(())
        }
    })
}

/// Admits the request and runs its session, or answers why not.
async fn take_over(state: Arc<AppState>, request: Request, framed: Framed<TcpStream, h1::Codec>) {
    let admitted = admit(&state, &request);
    let status = admitted
        .as_ref()
        .map_or_else(|e| e.status_code(), |_| StatusCode::SWITCHING_PROTOCOLS);
    tracing::info!(
        http.method = %request.method(),
        http.target = %loggable_target(request.uri()),
        http.status_code = status.as_u16(),
        "WebSocket upgrade"
    );
    let (client, mut accepted) = match admitted {
        Ok(admitted) => admitted,
        Err(error) => return refuse(&state, framed, error).await,
    };
    let mut framed = framed;
    let mut head = accepted.finish().drop_body();
    head.head_mut().set_connection_type(ConnectionType::Upgrade);
    if framed
        .send(Message::Item((head, BodySize::None)))
        .await
        .is_err()
    {
        return;
    }
    let parts = framed.into_parts();
    let (read, write) = parts.io.into_split();
    let id = state.next_session_id();
    let span = match &client.identity {
        Some(identity) => tracing::info_span!("session", id, user = identity.subject()),
        None => tracing::info_span!("session", id),
    };
    let incoming = Incoming::new(read, parts.read_buf, state.settings.max_frame_bytes);
    Session::run(state, id, write, incoming, client)
        .instrument(span)
        .await;
}

/// Who may open this WebSocket, and the handshake's answer; or why not.
fn admit(
    state: &AppState,
    request: &Request,
) -> Result<(Client, actix_http::ResponseBuilder), ApiError> {
    let head = request.head();
    if head.uri.path() != CHAT {
        return Err(ApiError::NoRoute(head.uri.path().to_owned()));
    }
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable);
    }
    let identity = state
        .upgrade_identity(head.headers(), head.uri.query().unwrap_or_default())
        .map_err(ApiError::Unauthorized)?;
    let accepted = ws::handshake(head)
        .map_err(|_| ApiError::InvalidRequest("expected a WebSocket upgrade request".to_owned()))?;
    let connection = open_connection(state, request, head.headers(), identity.as_ref())?;
    Ok((
        Client {
            identity,
            connection,
        },
        accepted,
    ))
}

/// Counts the connection against its client's cap, when there is one.
fn open_connection(
    state: &AppState,
    request: &Request,
    headers: &HeaderMap,
    identity: Option<&Identity>,
) -> Result<Option<OpenConnection>, ApiError> {
    let client = state.client_key(request.peer_addr(), headers, identity);
    let (Some(cap), Some(client)) = (&state.connection_cap, client) else {
        return Ok(None);
    };
    cap.open(client)
        .map(Some)
        .ok_or(ApiError::TooManyConnections(cap.per_address()))
}

/// Answers a refused upgrade with its problem document, then closes the connection.
async fn refuse(state: &AppState, mut framed: Framed<TcpStream, h1::Codec>, error: ApiError) {
    state.metrics.http_error(error.code());
    let response: Response<_> = error.error_response().into();
    let (mut head, body) = response.into_parts();
    head.head_mut().set_connection_type(ConnectionType::Close);
    let Ok(body) = body.try_into_bytes() else {
        return;
    };
    let size = BodySize::Sized(body.len() as u64);
    let _ = framed.feed(Message::Item((head, size))).await;
    let _ = framed.feed(Message::Chunk(Some(body))).await;
    let _ = framed.send(Message::Chunk(None)).await;
}
