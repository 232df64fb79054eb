//! What the benchmark programs share: REST and WebSocket addresses of the server under test.

use serde_json::{Value, json};

pub async fn create_room(http: &reqwest::Client, base: &str, name: &str) -> String {
    post_room(http, base, &json!({ "name": name }), None).await
}

/// Creates a room from this body (as `token`'s bearer, if given); its id.
pub async fn post_room(
    http: &reqwest::Client,
    base: &str,
    body: &Value,
    token: Option<&str>,
) -> String {
    let mut request = http.post(format!("{base}/api/rooms")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let room: Value = request
        .send()
        .await
        .expect("POST /api/rooms")
        .json()
        .await
        .expect("room JSON");
    room["roomId"].as_str().expect("roomId").to_owned()
}

pub fn ws_url(base: &str) -> String {
    format!("{}/ws/chat", base.replacen("http", "ws", 1))
}

/// A plain HTTP client, with the TLS crypto provider the server installs (reqwest has none
/// of its own here).
pub fn http_client() -> reqwest::Client {
    chat::webhooks::install_tls_provider();
    reqwest::Client::new()
}
