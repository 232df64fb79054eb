//! The web chat page: plain HTML, CSS and JavaScript from `web/`, built into the binary so the
//! page works with no internet access and always matches the server it comes from.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS};
use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// Only the page's own files may run or load; connections go back to this origin only. Even a
/// message that slipped past the page's text-only rendering could run no script.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// A script of the page, served as JavaScript.
macro_rules! script {
    ($name:literal) => {
        (
            $name,
            JAVASCRIPT,
            include_str!(concat!("../../web/", $name)),
        )
    };
}

/// The files under `/assets/`: name, content type, body. The page's scripts are ES modules
/// that import each other by these names (no build step).
const ASSETS: [(&str, &str, &str); 19] = [
    script!("app.js"),
    script!("page.js"),
    script!("link.js"),
    script!("rooms.js"),
    script!("visit.js"),
    script!("signin.js"),
    script!("log.js"),
    script!("presence.js"),
    script!("outbox.js"),
    script!("header.js"),
    script!("changes.js"),
    script!("moderation.js"),
    script!("events.js"),
    script!("access.js"),
    script!("api.js"),
    script!("identity.js"),
    script!("connection.js"),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../web/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../web/favicon.svg"),
    ),
];

/// The web chat page: rooms, nickname, history, live chat, automatic reconnect and resume.
#[utoipa::path(get, path = "/", tag = "web",
    responses((status = 200, description = "The chat page (HTML; its scripts and styles are under /assets/)",
        body = String, content_type = "text/html")))]
pub async fn index() -> HttpResponse {
    file(
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    )
}

pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    ASSETS
        .iter()
        .find(|(file_name, ..)| *file_name == name.as_str())
        .map(|(_, content_type, body)| file(content_type, body))
        .ok_or_else(|| ApiError::NoRoute(format!("/assets/{name}")))
}

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Revalidate on each load, so a page open across an upgrade picks up the new files.
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(body)
}
