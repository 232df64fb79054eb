//! Taking a WebSocket over from HTTP. actix-http hands every upgrade request here, with its
//! connection: a request for a WebSocket endpoint is checked (`admission.rs`: draining,
//! identity, the handshake, the per-client connection cap) and answered `101`, and its
//! session owns the TCP stream from then on; any other gets the problem document the API
//! would give. Owning the stream, a session writes many frames per system call and closes the
//! connection as soon as the closing handshake is done, rather than when HTTP's timers say so.
//!
//! The endpoints: `/ws/chat` (JSON frames) and `/ws/stomp` (STOMP), each also a SockJS base:
//! `<base>/websocket` is the plain endpoint again, `<base>/{server}/{session}/websocket` the
//! SockJS WebSocket transport.

mod admission;

use std::convert::Infallible;
use std::sync::Arc;

use actix_codec::{Framed, FramedParts};
use actix_http::body::{BodySize, MessageBody};
use actix_http::h1::{self, Message};
use actix_http::{ConnectionType, Request, Response, ResponseBuilder, StatusCode};
use actix_service::{ServiceFactory, fn_service};
use actix_web::ResponseError;
use bytes::BytesMut;
use futures_util::SinkExt;
use tokio::net::TcpStream;
use tracing::Instrument;

use self::admission::{Admitted, Route, admit};
use super::dialect::stomp::Stomp;
use super::session::{Client, Dialect, Opening, Session};
use super::transport::websocket::Incoming;
use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::loggable_target;

/// An upgrade request and the connection it came on.
pub type Upgrade = (Request, Framed<TcpStream, h1::Codec>);

/// The path of the chat endpoint.
pub const CHAT: &str = "/ws/chat";
/// The path of the STOMP endpoint.
pub const STOMP: &str = "/ws/stomp";

/// The service actix-http runs for each upgrade request.
pub fn service(
    state: Arc<AppState>,
) -> impl ServiceFactory<Upgrade, Config = (), Response = (), Error = Infallible, InitError = ()> + Clone
{
    fn_service(move |(request, framed): Upgrade| {
        let state = state.clone();
        // Counted from here, so that a shutdown waits for a session whose handshake is under
        // way as for one that serves.
        let handshake = state.tasks.token();
        async move {
            if let Some(session) = take_over(&state, request, framed).await {
                // The session runs as a task of its own on this worker, not inside actix-http's
                // connection task: that task (its dispatcher's state, about 12 KiB with the
                // session inline) ends here instead of living as long as the session, and the
                // session's task holds the session and nothing of the handshake.
                tokio::task::spawn_local(state.tasks.track_future(session));
            }
            drop(handshake);
            Ok(())
        }
    })
}

/// Admits the request and makes its session, or answers why not.
async fn take_over(
    state: &Arc<AppState>,
    request: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> Option<impl Future<Output = ()> + use<>> {
    let admitted = admit(state, &request);
    log_upgrade(&request, &admitted);
    // Its head (pooled by actix-http, with room for many headers) is not kept for the session.
    drop(request);
    let Admitted {
        route,
        client,
        accepted,
    } = match admitted {
        Ok(admitted) => admitted,
        Err(error) => {
            refuse(state, framed, error).await;
            return None;
        }
    };
    let FramedParts { io, read_buf, .. } = switch(framed, accepted).await?;
    Some(start(state.clone(), route, client, io, read_buf))
}

/// The session on the connection the handshake switched, to run.
fn start(
    state: Arc<AppState>,
    route: Route,
    client: Client,
    io: TcpStream,
    read: BytesMut,
) -> impl Future<Output = ()> + use<> {
    let (read_half, write) = io.into_split();
    let id = state.next_session_id();
    let span = match &client.identity {
        Some(identity) => tracing::info_span!("session", id, user = identity.subject()),
        None => tracing::info_span!("session", id),
    };
    let incoming = Incoming::new(read_half, read, state.settings.max_frame_bytes);
    let dialect = match route.stomp {
        true => Dialect::Stomp(Box::new(Stomp::new())),
        false => Dialect::Chat,
    };
    let opening = Opening {
        id,
        write,
        transport: route.transport,
        dialect,
        client,
    };
    Session::run(state, opening, incoming).instrument(span)
}

fn log_upgrade(request: &Request, admitted: &Result<Admitted, ApiError>) {
    let status = admitted
        .as_ref()
        .map_or_else(|e| e.status_code(), |_| StatusCode::SWITCHING_PROTOCOLS);
    tracing::info!(
        http.method = %request.method(),
        http.target = %loggable_target(request.uri()),
        http.status_code = status.as_u16(),
        "WebSocket upgrade"
    );
}

/// Answers 101 and hands the connection over; None when the client went away meanwhile. The
/// HTTP write buffer (8 KiB) goes now: the session writes through a buffer of its own.
async fn switch(
    mut framed: Framed<TcpStream, h1::Codec>,
    mut accepted: ResponseBuilder,
) -> Option<FramedParts<TcpStream, h1::Codec>> {
    let mut head = accepted.finish().drop_body();
    head.head_mut().set_connection_type(ConnectionType::Upgrade);
    let sent = framed.send(Message::Item((head, BodySize::None))).await;
    sent.ok().map(|()| framed.into_parts())
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
