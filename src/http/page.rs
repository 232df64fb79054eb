//! The web chat page: plain HTML, CSS and JavaScript from `web/`, built into the binary so the
//! page works with no internet access and always matches the server it comes from.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS};

/// Only the page's own files may run or load; connections go back to this origin only. Even a
/// message that slipped past the page's text-only rendering could run no script.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn index() -> HttpResponse {
    asset(
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    )
}

pub async fn script() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    )
}

pub async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", include_str!("../../web/app.css"))
}

pub async fn favicon() -> HttpResponse {
    asset("image/svg+xml", include_str!("../../web/favicon.svg"))
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Revalidate on each load, so a page open across an upgrade picks up the new files.
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(body)
}
