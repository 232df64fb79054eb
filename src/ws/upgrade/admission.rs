//! Whether an upgrade request may become a session: the endpoint its path names (and over
//! which transport), the identity it carries, the STOMP subprotocol it offers, and its place
//! under the per-client connection cap.

use actix_http::header::{self, HeaderMap, HeaderValue};
use actix_http::{Request, ResponseBuilder, ws};

use super::{CHAT, STOMP};
use crate::clients::OpenConnection;
use crate::error::ApiError;
use crate::identity::{Identity, Refused};
use crate::state::AppState;
use crate::ws::dialect::stomp::SUBPROTOCOLS;
use crate::ws::session::Client;
use crate::ws::transport::sockjs;
use crate::ws::transport::websocket::Transport;

/// Which endpoint a path names, and how its frames travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Route {
    pub(super) stomp: bool,
    pub(super) transport: Transport,
}

fn route(path: &str) -> Option<Route> {
    let (base, stomp) = [(CHAT, false), (STOMP, true)]
        .into_iter()
        .find(|(base, _)| path.starts_with(base))?;
    let transport = match &path[base.len()..] {
        "" | "/websocket" => Transport::WebSocket,
        rest => {
            let rest = rest.strip_prefix('/')?;
            sockjs::is_transport_path(rest).then_some(Transport::SockJs)?
        }
    };
    Some(Route { stomp, transport })
}

/// What the upgrade lets in.
pub(super) struct Admitted {
    pub(super) route: Route,
    pub(super) client: Client,
    pub(super) accepted: ResponseBuilder,
}

/// Who may open this WebSocket, and the handshake's answer; or why not.
pub(super) fn admit(state: &AppState, request: &Request) -> Result<Admitted, ApiError> {
    let head = request.head();
    let route =
        route(head.uri.path()).ok_or_else(|| ApiError::NoRoute(head.uri.path().to_owned()))?;
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable);
    }
    let identity = identity(
        state,
        head.headers(),
        head.uri.query().unwrap_or_default(),
        route,
    )
    .map_err(ApiError::Unauthorized)?;
    let mut accepted = ws::handshake(head)
        .map_err(|_| ApiError::InvalidRequest("expected a WebSocket upgrade request".to_owned()))?;
    if route.stomp {
        offer_stomp(head.headers(), &mut accepted);
    }
    let connection = open_connection(state, request, head.headers(), identity.as_ref())?;
    Ok(Admitted {
        route,
        client: Client {
            identity,
            connection,
        },
        accepted,
    })
}

/// Answers with the STOMP subprotocol the client offered, if it offered one.
fn offer_stomp(headers: &HeaderMap, accepted: &mut ResponseBuilder) {
    if let Some(protocol) = stomp_subprotocol(headers) {
        accepted.insert_header((
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol),
        ));
    }
}

/// The identity the upgrade carries. A STOMP client may bring its token in CONNECT instead,
/// so its upgrade needs none; one it does carry must be valid.
fn identity(
    state: &AppState,
    headers: &HeaderMap,
    query: &str,
    route: Route,
) -> Result<Option<Identity>, Refused> {
    match state.upgrade_identity(headers, query) {
        Err(Refused::Missing) if route.stomp => Ok(None),
        other => other,
    }
}

/// The newest STOMP version among the subprotocols the client offers, if it offers any.
fn stomp_subprotocol(headers: &HeaderMap) -> Option<&'static str> {
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|protocol| protocol.trim().to_ascii_lowercase())
        .collect();
    SUBPROTOCOLS
        .into_iter()
        .find(|protocol| offered.iter().any(|offered| offered == protocol))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_base_serves_itself_its_plain_path_and_sockjs() {
        let chat = |transport| {
            Some(Route {
                stomp: false,
                transport,
            })
        };
        let stomp = |transport| {
            Some(Route {
                stomp: true,
                transport,
            })
        };
        assert_eq!(route("/ws/chat"), chat(Transport::WebSocket));
        assert_eq!(route("/ws/chat/websocket"), chat(Transport::WebSocket));
        assert_eq!(route("/ws/chat/000/abc/websocket"), chat(Transport::SockJs));
        assert_eq!(route("/ws/stomp"), stomp(Transport::WebSocket));
        assert_eq!(route("/ws/stomp/123/x/websocket"), stomp(Transport::SockJs));
        for path in [
            "/ws/chatter",
            "/ws/chat/000/abc/xhr",
            "/ws/stomp/info",
            "/ws",
            "/api/rooms",
        ] {
            assert_eq!(route(path), None, "{path}");
        }
    }

    #[test]
    fn the_newest_offered_stomp_subprotocol_is_chosen() {
        let offered = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(value),
            );
            stomp_subprotocol(&headers)
        };
        assert_eq!(
            offered("v10.stomp, v11.stomp, v12.stomp"),
            Some("v12.stomp")
        );
        assert_eq!(offered("v11.stomp,v10.stomp"), Some("v11.stomp"));
        assert_eq!(offered("mqtt"), None);
    }
}
