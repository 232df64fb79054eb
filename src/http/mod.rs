//! The HTTP surface: one module per resource, each owning its handlers and OpenAPI
//! annotations; [`routes`] only composes them.

pub mod docs;
pub mod health;
pub mod messages;
pub mod middleware;
pub mod rooms;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::ws;

pub fn routes(cfg: &mut web::ServiceConfig) {
    let api = web::scope("/api")
        .wrap(from_fn(middleware::rate_limit))
        .service(
            web::resource("/rooms")
                .route(web::post().to(rooms::create_room))
                .route(web::get().to(rooms::list_rooms))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/rooms/{roomId}")
                .route(web::get().to(rooms::get_room))
                .route(web::delete().to(rooms::delete_room))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/rooms/{roomId}/messages")
                .route(web::get().to(messages::history))
                .default_service(web::to(method_not_allowed)),
        );
    cfg.service(api)
        .route("/ws/chat", web::get().to(ws::chat_socket))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route(docs::OPENAPI_PATH, web::get().to(docs::openapi_json))
        .service(web::redirect("/swagger-ui", "/swagger-ui/"))
        .service(docs::swagger_ui())
        .route("/", web::get().to(docs::index));
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute(req.path().to_owned()))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(req.method().to_string()))
}
