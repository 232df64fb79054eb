//! The HTTP surface: one module per resource, each owning its handlers and OpenAPI
//! annotations; [`routes`] only composes them.

pub mod access;
pub mod docs;
pub mod health;
pub mod members;
pub mod messages;
pub mod middleware;
pub mod moderation;
pub mod page;
pub mod publish;
pub mod request_span;
pub mod room_settings;
pub mod rooms;
pub mod webhooks;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, Resource, web};

use crate::error::ApiError;
use crate::ws;

pub fn routes(cfg: &mut web::ServiceConfig) {
    let api = web::scope("/api")
        .wrap(from_fn(middleware::guard))
        .configure(room_routes)
        .configure(moderation_routes)
        .configure(webhook_routes);
    cfg.service(api)
        .service(resource("/ws/chat", "GET").route(web::get().to(ws::chat_socket)))
        .service(resource("/ws/stomp", "GET").route(web::get().to(ws::stomp_socket)))
        .service(ws::sockjs_info("/ws/chat/info"))
        .service(ws::sockjs_info("/ws/stomp/info"))
        .service(resource("/healthz", "GET").route(web::get().to(health::healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(health::readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(health::metrics)))
        .service(resource(docs::OPENAPI_PATH, "GET").route(web::get().to(docs::openapi_json)))
        .service(resource(docs::ASYNCAPI_PATH, "GET").route(web::get().to(docs::asyncapi_json)))
        .service(web::redirect("/swagger-ui", "/swagger-ui/"))
        .service(docs::swagger_ui())
        .service(resource("/", "GET").route(web::get().to(page::index)))
        .service(resource("/assets/{name}", "GET").route(web::get().to(page::asset)));
}

/// Rooms, their history and their members.
fn room_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/rooms", "GET, POST")
            .route(web::post().to(rooms::create_room))
            .route(web::get().to(rooms::list_rooms)),
    )
    .service(
        resource("/rooms/{roomId}", "GET, PATCH, DELETE")
            .route(web::get().to(rooms::get_room))
            .route(web::patch().to(room_settings::update_room))
            .route(web::delete().to(rooms::delete_room)),
    )
    .service(
        resource("/rooms/{roomId}/messages", "GET, POST")
            .route(web::get().to(messages::history))
            .route(web::post().to(publish::publish)),
    )
    .service(
        resource("/rooms/{roomId}/members", "GET").route(web::get().to(members::list_members)),
    );
}

/// A room's roles, kicks, bans and mutes.
fn moderation_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/rooms/{roomId}/members/{name}", "DELETE")
            .route(web::delete().to(moderation::kick)),
    )
    .service(resource("/rooms/{roomId}/roles", "GET").route(web::get().to(moderation::list_roles)))
    .service(
        resource("/rooms/{roomId}/roles/{name}", "PUT, DELETE")
            .route(web::put().to(moderation::grant_role))
            .route(web::delete().to(moderation::revoke_role)),
    )
    .service(resource("/rooms/{roomId}/bans", "GET").route(web::get().to(moderation::list_bans)))
    .service(
        resource("/rooms/{roomId}/bans/{name}", "PUT, DELETE")
            .route(web::put().to(moderation::ban))
            .route(web::delete().to(moderation::unban)),
    )
    .service(resource("/rooms/{roomId}/mutes", "GET").route(web::get().to(moderation::list_mutes)))
    .service(
        resource("/rooms/{roomId}/mutes/{name}", "PUT, DELETE")
            .route(web::put().to(moderation::mute))
            .route(web::delete().to(moderation::unmute)),
    );
}

/// An admin's webhooks.
fn webhook_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/webhooks", "GET, POST")
            .route(web::post().to(webhooks::create_webhook))
            .route(web::get().to(webhooks::list_webhooks)),
    )
    .service(
        resource("/webhooks/{webhookId}", "GET, DELETE")
            .route(web::get().to(webhooks::get_webhook))
            .route(web::delete().to(webhooks::delete_webhook)),
    );
}

/// A resource that answers every method it does not serve with 405 and `Allow`.
fn resource(path: &str, allowed: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        let method = req.method().to_string();
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed { method, allowed })
    }))
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute(req.path().to_owned()))
}
