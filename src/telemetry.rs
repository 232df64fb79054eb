//! Tracing setup: the filter comes from `RUST_LOG` (default `info`), the format from settings;
//! and what of a request's target may be logged.

use actix_web::http::Uri;
use actix_web::web;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; a second call (as in tests) leaves the first in place.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    drop(installed);
}

/// The path, and the query unless it carries a token (or cannot be read, so might).
pub fn loggable_target(uri: &Uri) -> String {
    let path = uri.path();
    match uri.query() {
        None => path.to_owned(),
        Some(query) if carries_token(query) => format!("{path}?[redacted: it carries a token]"),
        Some(query) => format!("{path}?{query}"),
    }
}

fn carries_token(query: &str) -> bool {
    web::Query::<Vec<(String, String)>>::from_query(query).map_or(true, |pairs| {
        pairs.iter().any(|(key, _)| key == "access_token")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &'static str) -> String {
        loggable_target(&Uri::from_static(uri))
    }

    #[test]
    fn a_query_that_carries_a_token_is_left_out_however_it_is_spelled() {
        for uri in [
            "/ws/chat?access_token=secret",
            "/ws/chat?a=1&access%5Ftoken=secret",
            "/ws/chat?access_token",
        ] {
            let logged = target(uri);
            assert!(!logged.contains("secret"), "{logged}");
            assert!(logged.starts_with("/ws/chat?[redacted"), "{logged}");
        }
    }

    #[test]
    fn other_queries_are_kept() {
        assert_eq!(target("/api/rooms?limit=5"), "/api/rooms?limit=5");
        assert_eq!(target("/api/rooms"), "/api/rooms");
    }
}
