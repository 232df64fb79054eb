//! SockJS (`sockjs-client` 1.x): `/ws/chat` and `/ws/stomp` are also SockJS base URLs. Only
//! the WebSocket transport is served (`<base>/{server}/{session}/websocket`): on it the server
//! sends `o` on open, `a[...]` with the frames of one write, `h` every 25 s and
//! `c[code,"reason"]` before closing, and the client sends JSON arrays of strings. The other
//! transports need a session kept on the server between requests (and so sticky load
//! balancing across instances); they answer 404, as every path under a base but these does.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

/// How often an open SockJS connection sends `h`.
pub const HEARTBEAT: Duration = Duration::from_secs(25);
/// Sent first on a new connection.
pub const OPEN: &str = "o";
pub const HEARTBEAT_FRAME: &str = "h";

/// A SockJS transport path under a base: `{server}/{session}/websocket`, where neither may
/// hold a dot (the protocol's rule) nor be empty.
pub fn is_transport_path(rest: &str) -> bool {
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts[..], [server, session, "websocket"]
        if [server, session].iter().all(|part| !part.is_empty() && !part.contains('.')))
}

/// The messages of a frame the client sent: a JSON array of strings (an empty frame, or `[]`,
/// holds none). None: the frame is not that.
pub fn messages(text: &str) -> Option<Vec<String>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    match serde_json::from_str::<serde_json::Value>(text).ok()? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        serde_json::Value::String(one) => Some(vec![one]),
        _ => None,
    }
}

/// The close frame: `c[code,"reason"]`.
pub fn close_frame(code: u16, reason: &str) -> String {
    format!("c{}", json!([code, reason]))
}

/// `GET <base>/info`: the server speaks WebSocket, needs no cookie, takes any origin.
pub async fn info(req: HttpRequest) -> HttpResponse {
    let entropy: u32 = rand_entropy();
    let mut response = HttpResponse::Ok();
    cors(&mut response, &req);
    response
        .insert_header((
            header::CACHE_CONTROL,
            "no-store, no-cache, no-transform, must-revalidate, max-age=0",
        ))
        .content_type("application/json; charset=UTF-8")
        .body(
            json!({
                "websocket": true,
                "cookie_needed": false,
                "origins": ["*:*"],
                "entropy": entropy,
            })
            .to_string(),
        )
}

/// `OPTIONS <base>/info`: the preflight of a cross-origin `/info`.
pub async fn info_options(req: HttpRequest) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    cors(&mut response, &req);
    response
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "OPTIONS, GET"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "31536000"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000"))
        .finish()
}

/// CORS as SockJS wants it: the request's own origin (`null` too, from a page opened as a
/// file), with credentials; a request with no origin may come from anywhere, without them
/// (browsers refuse a wildcard together with credentials).
fn cors(response: &mut actix_web::HttpResponseBuilder, req: &HttpRequest) {
    if let Some(headers) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        response.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, headers.clone()));
    }
    response.insert_header((header::VARY, "Origin"));
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        response.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
        return;
    };
    response
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
        .insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"));
}

/// A number clients mix into their own randomness: this need not be unpredictable.
fn rand_entropy() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_websocket_transport_path_is_server_session_websocket() {
        assert!(is_transport_path("000/abcd/websocket"));
        assert!(is_transport_path("123/a-b_c/websocket"));
        for path in [
            "websocket",
            "000/abcd/xhr",
            "000//websocket",
            "0.0/abcd/websocket",
            "000/ab.cd/websocket",
            "a/b/c/websocket",
        ] {
            assert!(!is_transport_path(path), "{path}");
        }
    }

    #[test]
    fn a_client_frame_is_an_array_of_strings() {
        assert_eq!(messages(r#"["a","b"]"#), Some(vec!["a".into(), "b".into()]));
        assert_eq!(messages("[]"), Some(vec![]));
        assert_eq!(messages(""), Some(vec![]));
        assert_eq!(messages(r#""one""#), Some(vec!["one".into()]));
        for broken in [r#"["a""#, "[1]", "{}", "x"] {
            assert_eq!(messages(broken), None, "{broken}");
        }
    }

    #[test]
    fn a_close_frame_carries_its_code_and_reason() {
        assert_eq!(
            close_frame(1000, "Normal closure"),
            r#"c[1000,"Normal closure"]"#
        );
    }
}
