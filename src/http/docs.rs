//! The API's own documentation: the OpenAPI document and Swagger UI (assets built into the
//! binary, so it works offline), and the AsyncAPI document of the WebSocket and STOMP
//! messages.

use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::state::AppState;

pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";
pub const ASYNCAPI_PATH: &str = "/asyncapi.json";

/// The committed AsyncAPI 3.0 document; `tests/contract` checks it against real frames.
const ASYNCAPI: &str = include_str!("../../asyncapi/asyncapi.json");

/// The OpenAPI 3.1 document, byte-identical to the committed `openapi/openapi.json`.
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}

/// The AsyncAPI 3.0 document of the WebSocket protocols: every frame of `/ws/chat` and the
/// STOMP destinations, headers and messages of `/ws/stomp`, each with a JSON Schema.
#[utoipa::path(get, path = "/asyncapi.json", tag = "websocket",
    responses((status = 200, description = "The AsyncAPI 3.0 document", content_type = "application/json")))]
pub async fn asyncapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(ASYNCAPI)
}

pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/swagger-ui/{_:.*}").config(Config::new([OPENAPI_PATH]))
}
