//! A raw STOMP client for the tests: frames written and read by hand over a real WebSocket,
//! so every rule of PROTOCOL.md's STOMP section can be checked byte for byte.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{WAIT, small_buffer_socket};

/// A frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Frame {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("a JSON body: {self:?}"))
    }

    /// Reads one frame the server sent in one text message (the first header of a repeated
    /// one wins).
    fn parse(text: &str) -> Frame {
        let text = text
            .strip_suffix('\0')
            .unwrap_or_else(|| panic!("NUL-terminated: {text:?}"));
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let command = lines.next().expect("a command").to_owned();
        let mut headers = HashMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').expect("name:value");
            headers
                .entry(name.to_owned())
                .or_insert_with(|| value.to_owned());
        }
        Frame {
            command,
            headers,
            body: body.to_owned(),
        }
    }
}

/// What the server sent next.
#[derive(Debug)]
pub enum Next {
    Frame(Frame),
    HeartBeat,
    Closed(Option<u16>),
}

pub struct StompClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
}

/// Opens a WebSocket to `/ws/stomp`, offering these subprotocols (none when empty) and
/// headers.
pub async fn open(port: u16, path: &str, protocols: &str, headers: &[(&str, &str)]) -> StompClient {
    let mut request = format!("ws://127.0.0.1:{port}{path}")
        .into_client_request()
        .expect("a request");
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocols).unwrap(),
        );
    }
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the STOMP WebSocket opens");
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|value| value.to_str().unwrap().to_owned());
    StompClient { ws, protocol }
}

/// A STOMP connection whose socket has a tiny receive buffer, so a test can stall it cheaply.
pub async fn open_small_buffer(port: u16) -> StompClient {
    let ws = small_buffer_socket(port, "/ws/stomp").await;
    let mut client = StompClient { ws, protocol: None };
    client
        .send_frame("CONNECT", &[("accept-version", "1.2")], "")
        .await;
    client.expect("CONNECTED").await;
    client
}

/// Writes a frame as a client would: command, headers, blank line, body, NUL.
pub fn frame(command: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!("{command}\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}:{value}\n"));
    }
    text.push('\n');
    text.push_str(body);
    text.push('\0');
    text
}

impl StompClient {
    pub async fn connect(port: u16) -> StompClient {
        let mut client = open(port, "/ws/stomp", "v12.stomp", &[]).await;
        client
            .send(&frame(
                "CONNECT",
                &[("accept-version", "1.2,1.1,1.0"), ("heart-beat", "0,0")],
                "",
            ))
            .await;
        client.expect("CONNECTED").await;
        client
    }

    /// Sends `count` TALKs to the room with receipts, then reads until each has its receipt,
    /// skipping other frames.
    pub async fn talk_and_await(&mut self, room_id: &str, sender: &str, text: &str, count: usize) {
        for i in 0..count {
            let body =
                json!({"type": "TALK", "roomId": room_id, "sender": sender, "message": text});
            let receipt = format!("t-{i}");
            self.send_frame(
                "SEND",
                &[("destination", "/pub/chat/message"), ("receipt", &receipt)],
                &body.to_string(),
            )
            .await;
        }
        let mut receipts = 0;
        while receipts < count {
            if self.next_frame().await.command == "RECEIPT" {
                receipts += 1;
            }
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    pub async fn send_frame(&mut self, command: &str, headers: &[(&str, &str)], body: &str) {
        self.send(&frame(command, headers, body)).await;
    }

    /// Subscribes and waits for the receipt.
    pub async fn subscribe(&mut self, id: &str, destination: &str) {
        self.ask_to_subscribe(id, destination, None).await;
        let receipt = self.expect("RECEIPT").await;
        assert_eq!(receipt.header("receipt-id"), Some(id));
    }

    /// Sends SUBSCRIBE (with `last-seq` when given, and a receipt named after its id) without
    /// waiting for the answer.
    pub async fn ask_to_subscribe(&mut self, id: &str, destination: &str, last_seq: Option<&str>) {
        let mut headers = vec![("id", id), ("destination", destination), ("receipt", id)];
        headers.extend(last_seq.map(|last_seq| ("last-seq", last_seq)));
        self.send_frame("SUBSCRIBE", &headers, "").await;
    }

    /// SENDs a chat frame to `/pub/chat/message`.
    pub async fn chat(&mut self, body: Value) {
        self.send_frame(
            "SEND",
            &[
                ("destination", "/pub/chat/message"),
                ("content-type", "application/json"),
            ],
            &body.to_string(),
        )
        .await;
    }

    /// The next thing the server sends, within `wait`.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Next> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match message {
                Some(Ok(Message::Text(text))) if text.as_str() == "\n" => Next::HeartBeat,
                Some(Ok(Message::Text(text))) => Next::Frame(Frame::parse(&text)),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(close))) => Next::Closed(close.map(|c| u16::from(c.code))),
                Some(Ok(Message::Binary(_))) => panic!("the server sends text messages only"),
                None | Some(Err(_)) => Next::Closed(None),
                Some(Ok(other)) => panic!("unexpected {other:?}"),
            });
        }
    }

    /// The next frame, skipping heart-beats.
    pub async fn next_frame(&mut self) -> Frame {
        loop {
            match self.try_next(WAIT).await {
                Some(Next::Frame(frame)) => return frame,
                Some(Next::HeartBeat) => continue,
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    pub async fn expect(&mut self, command: &str) -> Frame {
        let frame = self.next_frame().await;
        assert_eq!(frame.command, command, "{frame:?}");
        frame
    }

    /// The next MESSAGE's event, skipping heart-beats.
    pub async fn next_event(&mut self) -> Value {
        self.expect("MESSAGE").await.json()
    }

    /// Reads until the close, returning its code; answers it, as a client does.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.try_next(WAIT).await {
                Some(Next::Closed(code)) => {
                    // Reading on sends the answer tungstenite queued, then sees the TCP close.
                    let _ = tokio::time::timeout(WAIT, self.ws.next()).await;
                    return code;
                }
                Some(_) => continue,
                None => panic!("no close in time"),
            }
        }
    }
}
