//! The OpenAPI document, generated from the handlers and types. `chat openapi` prints it;
//! the committed `openapi/openapi.json` must equal it byte for byte (a test checks).

use utoipa::OpenApi;

use crate::domain::{Event, EventKind};
use crate::error::Problem;
use crate::http::{health, messages, page, rooms};
use crate::ws;

#[derive(OpenApi)]
#[openapi(
    info(title = "Chat service", description = include_str!("../openapi/description.md")),
    paths(
        rooms::create_room,
        rooms::list_rooms,
        rooms::get_room,
        rooms::delete_room,
        messages::history,
        ws::chat_socket,
        health::healthz,
        health::readyz,
        health::metrics,
        page::index,
    ),
    components(schemas(Event, EventKind, Problem)),
    tags(
        (name = "rooms", description = "Create, list, inspect and delete rooms; read their history"),
        (name = "websocket", description = "Live chat: ENTER, TALK and LEAVE over one WebSocket"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "web", description = "The chat page a person opens in a browser"),
    )
)]
pub struct ApiDoc;

/// The document as served and committed: pretty JSON with a final newline.
pub fn render() -> Result<String, serde_json::Error> {
    ApiDoc::openapi().to_pretty_json().map(|json| json + "\n")
}
