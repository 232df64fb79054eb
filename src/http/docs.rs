//! The API's own documentation: the OpenAPI document and Swagger UI (assets built into the
//! binary, so it works offline).

use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::state::AppState;

pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";

/// The OpenAPI 3.1 document, byte-identical to the committed `openapi/openapi.json`.
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}

pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/swagger-ui/{_:.*}").config(Config::new([OPENAPI_PATH]))
}
