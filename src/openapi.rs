//! The OpenAPI document, generated from the handlers and types. `chat openapi` prints it;
//! the committed `openapi/openapi.json` must equal it byte for byte (a test checks).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::domain::{Event, EventKind};
use crate::error::Problem;
use crate::http::{
    docs, health, members, messages, moderation, page, publish, room_settings, rooms, webhooks,
};
use crate::ws;

#[derive(OpenApi)]
#[openapi(
    info(title = "Chat service", description = include_str!("../openapi/description.md")),
    paths(
        rooms::create_room,
        rooms::list_rooms,
        rooms::get_room,
        room_settings::update_room,
        rooms::delete_room,
        messages::history,
        publish::publish,
        members::list_members,
        moderation::list_roles,
        moderation::grant_role,
        moderation::revoke_role,
        moderation::kick,
        moderation::list_bans,
        moderation::ban,
        moderation::unban,
        moderation::list_mutes,
        moderation::mute,
        moderation::unmute,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::get_webhook,
        webhooks::delete_webhook,
        ws::chat_socket,
        ws::stomp_socket,
        docs::asyncapi_json,
        health::healthz,
        health::readyz,
        health::metrics,
        page::index,
    ),
    components(schemas(Event, EventKind, Problem)),
    modifiers(&TokenSchemes),
    tags(
        (name = "rooms", description = "Create, list, inspect, change and delete rooms; read their history"),
        (name = "moderation", description = "Identity mode: a room's roles, kicks, bans and mutes; each change is also a MODERATION event of the room"),
        (name = "webhooks", description = "Identity mode, admins: webhooks that receive the events of their rooms, signed as Standard Webhooks, in seq order per room, never skipping one"),
        (name = "websocket", description = "Live chat: ENTER, TALK and LEAVE over one WebSocket"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "web", description = "The chat page a person opens in a browser"),
    )
)]
pub struct ApiDoc;

/// How identity mode's tokens travel: a bearer header on every `/api/` operation and on the
/// upgrade, or the `access_token` parameter on the upgrade (browsers cannot set its headers).
/// Operations list them with an empty alternative, since open mode needs neither.
struct TokenSchemes;

impl Modify for TokenSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "A JSON Web Token, required when the service runs in identity mode",
            ))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let query = ApiKey::Query(ApiKeyValue::with_description(
            "access_token",
            "The same token as a query parameter, on the WebSocket upgrade only",
        ));
        components.add_security_scheme("access_token", SecurityScheme::ApiKey(query));
    }
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn render() -> Result<String, serde_json::Error> {
    ApiDoc::openapi().to_pretty_json().map(|json| json + "\n")
}
