//! The API's own documentation: the OpenAPI document, Swagger UI (assets built into the
//! binary, so it works offline) and the landing page.

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

/// The service's home page.
pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("index.html"))
}
