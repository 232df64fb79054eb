//! WebSocket clients of the server: typed frames, waits for what arrives, stalled readers,
//! refused upgrades.

use super::*;

impl TestApp {
    pub async fn connect(&self) -> WsClient {
        connect(self.port).await
    }
}

#[derive(Debug)]
pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send_json(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn enter(&mut self, room_id: &str, sender: &str) {
        self.send_json(json!({"type": "ENTER", "roomId": room_id, "sender": sender}))
            .await;
    }

    pub async fn enter_after(&mut self, room_id: &str, sender: &str, last_seq: u64) {
        self.send_json(
            json!({"type": "ENTER", "roomId": room_id, "sender": sender, "lastSeq": last_seq}),
        )
        .await;
    }

    pub async fn talk(&mut self, room_id: &str, sender: &str, message: &str) {
        self.send_json(
            json!({"type": "TALK", "roomId": room_id, "sender": sender, "message": message}),
        )
        .await;
    }

    pub async fn talk_with_id(&mut self, room_id: &str, sender: &str, message: &str, id: &str) {
        self.send_json(json!({"type": "TALK", "roomId": room_id, "sender": sender, "message": message, "clientMsgId": id}))
            .await;
    }

    /// Sends `count` TALKs, then reads until each has been acknowledged, skipping other frames.
    pub async fn talk_and_await(&mut self, room_id: &str, sender: &str, text: &str, count: usize) {
        for _ in 0..count {
            self.talk(room_id, sender, text).await;
        }
        let mut acknowledged = 0;
        while acknowledged < count {
            let frame = self.next_json().await;
            if frame["type"] == "TALK" && frame["sender"] == sender {
                acknowledged += 1;
            }
        }
    }

    pub async fn leave(&mut self, room_id: &str, sender: &str) {
        self.send_json(json!({"type": "LEAVE", "roomId": room_id, "sender": sender}))
            .await;
    }

    /// Enters and consumes the session's own ENTER event.
    pub async fn join(&mut self, room_id: &str, sender: &str) -> Value {
        self.enter(room_id, sender).await;
        self.next_of_type("ENTER").await
    }

    /// The next text frame as JSON, skipping control frames.
    pub async fn next_json(&mut self) -> Value {
        self.try_next_json(WAIT)
            .await
            .expect("a frame arrives in time")
    }

    /// The next text frame within `wait`, or None.
    pub async fn try_next_json(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("server frames are JSON"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        let frame = self.next_json().await;
        assert_eq!(frame["type"], kind, "unexpected frame {frame}");
        frame
    }

    pub async fn next_error(&mut self, code: &str) -> Value {
        let frame = self.next_of_type("ERROR").await;
        assert_eq!(frame["code"], code, "{frame}");
        assert!(frame["message"].as_str().is_some_and(|m| !m.is_empty()));
        frame
    }

    /// Asserts that no text frame arrives for a while.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(frame) = self.try_next_json(wait).await {
            panic!("expected no frame, got {frame}");
        }
    }

    /// Reads until the server's close frame and returns its code.
    pub async fn expect_close(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("close arrives in time");
            match frame {
                Some(Ok(Message::Close(Some(close)))) => return u16::from(close.code),
                Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A WebSocket client of the server on this local port.
pub async fn connect(port: u16) -> WsClient {
    let url = format!("ws://127.0.0.1:{port}/ws/chat");
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket connects");
    WsClient { ws }
}

/// A client whose socket has a tiny receive buffer, so a test can stall it cheaply.
pub async fn connect_small_buffer(port: u16) -> WsClient {
    WsClient {
        ws: small_buffer_socket(port, "/ws/chat").await,
    }
}

/// A WebSocket to `path` over a socket with a tiny receive buffer.
pub async fn small_buffer_socket(
    port: u16,
    path: &str,
) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("TCP connects");
    let url = format!("ws://127.0.0.1:{port}{path}");
    let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .expect("WebSocket handshake");
    ws
}

/// Opens a WebSocket from a local address with extra request headers, or returns the status
/// and body of the refused upgrade.
pub async fn try_connect(
    port: u16,
    from: std::net::IpAddr,
    headers: &[(&'static str, &'static str)],
) -> Result<WsClient, (u16, Value)> {
    try_upgrade(port, from, "/ws/chat", headers)
        .await
        .map_err(|refused| (refused.status, refused.problem))
}

/// An upgrade the server answered with an HTTP error instead.
#[derive(Debug)]
pub struct RefusedUpgrade {
    pub status: u16,
    pub problem: Value,
    pub challenge: Option<String>,
}

/// Opens a WebSocket on `path` (which may carry a query) from a local address with extra
/// request headers, or returns how the upgrade was refused.
pub async fn try_upgrade(
    port: u16,
    from: std::net::IpAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<WsClient, RefusedUpgrade> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind((from, 0).into())
        .expect("bind the local address");
    let stream = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("TCP connects");
    let mut request = format!("ws://127.0.0.1:{port}{path}")
        .into_client_request()
        .expect("a request");
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await {
        Ok((ws, _)) => Ok(WsClient { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|value| value.to_str().expect("a readable challenge").to_owned());
            Err(RefusedUpgrade {
                status: response.status().as_u16(),
                problem: serde_json::from_slice(body).unwrap_or(Value::Null),
                challenge,
            })
        }
        Err(other) => panic!("the upgrade failed: {other}"),
    }
}

impl TestApp {
    pub async fn connect_small_buffer(&self) -> WsClient {
        connect_small_buffer(self.port).await
    }
}

impl TestApp {
    /// A room with alice and then bob in it, each having read every ENTER so far.
    pub async fn alice_and_bob_in_a_room(&self) -> (String, WsClient, WsClient) {
        let room_id = self.create_room("general").await;
        let mut alice = self.connect().await;
        let mut bob = self.connect().await;
        alice.join(&room_id, "alice").await;
        bob.join(&room_id, "bob").await;
        alice.next_of_type("ENTER").await;
        (room_id, alice, bob)
    }
}
