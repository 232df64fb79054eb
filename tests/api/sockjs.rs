//! SockJS (PROTOCOL.md, "SockJS"): `/ws/chat` and `/ws/stomp` as SockJS base URLs, spoken
//! frame by frame as `sockjs-client` 1.x does over its WebSocket transport.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{WAIT, spawn_app};
use crate::suite::stomp_client::frame;

/// What the server sent on a SockJS connection.
#[derive(Debug, PartialEq)]
pub enum Sent {
    Open,
    HeartBeat,
    /// `a[...]`: the messages of one batch.
    Batch(Vec<String>),
    /// `c[code,"reason"]`.
    Close(u16, String),
    /// The WebSocket closed, with its code.
    Closed(Option<u16>),
}

pub struct SockJs {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl SockJs {
    /// Opens `<base>/{server}/{session}/websocket` and reads the `o`.
    pub async fn open(port: u16, base: &str) -> SockJs {
        Self::open_at(port, base, "").await
    }

    /// Opens it signed in with a token in its address, as a browser's sockjs-client is.
    pub async fn open_as(port: u16, base: &str, token: &str) -> SockJs {
        Self::open_at(port, base, &format!("?access_token={token}")).await
    }

    async fn open_at(port: u16, base: &str, query: &str) -> SockJs {
        let session = uuid::Uuid::new_v4().simple().to_string();
        let url = format!("ws://127.0.0.1:{port}{base}/042/{session}/websocket{query}");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the SockJS WebSocket opens");
        let mut client = SockJs { ws };
        assert_eq!(client.next().await, Sent::Open);
        client
    }

    /// Sends messages as `sockjs-client` does: a JSON array of strings.
    async fn send(&mut self, messages: &[String]) {
        let text = serde_json::to_string(messages).unwrap();
        self.send_raw(text).await;
    }

    async fn send_raw(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn next(&mut self) -> Sent {
        self.next_within(WAIT).await
    }

    pub async fn next_within(&mut self, wait: std::time::Duration) -> Sent {
        loop {
            let message = tokio::time::timeout(wait, self.ws.next())
                .await
                .expect("the server sends in time");
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(close))) => {
                    return Sent::Closed(close.map(|c| u16::from(c.code)));
                }
                None | Some(Err(_)) => return Sent::Closed(None),
                other => panic!("SockJS sends text only: {other:?}"),
            };
            return match (text.as_str(), text.split_at(1)) {
                ("o", _) => Sent::Open,
                ("h", _) => Sent::HeartBeat,
                (_, ("a", batch)) => Sent::Batch(serde_json::from_str(batch).expect("a[...]")),
                (_, ("c", close)) => {
                    let (code, reason): (u16, String) =
                        serde_json::from_str(close).expect("c[...]");
                    Sent::Close(code, reason)
                }
                _ => panic!("not a SockJS frame: {text}"),
            };
        }
    }

    /// The next `/ws/chat` frames, from however many batches they came in.
    async fn next_json(&mut self, count: usize) -> Vec<Value> {
        let mut frames = Vec::new();
        while frames.len() < count {
            match self.next().await {
                Sent::Batch(batch) => {
                    frames.extend(
                        batch
                            .iter()
                            .map(|m| serde_json::from_str::<Value>(m).unwrap()),
                    );
                }
                Sent::HeartBeat => {}
                other => panic!("expected a batch, got {other:?}"),
            }
        }
        assert_eq!(frames.len(), count, "{frames:?}");
        frames
    }
}

/// A page opened from a file sends `Origin: null`; browsers refuse `*` together with
/// credentials, so the origin is echoed as it came, `null` included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_echoes_a_null_origin_and_without_one_allows_any_without_credentials() {
    let app = spawn_app().await;
    for base in ["/ws/chat", "/ws/stomp"] {
        for method in [reqwest::Method::GET, reqwest::Method::OPTIONS] {
            let response = app
                .http
                .request(method.clone(), app.url(&format!("{base}/info")))
                .header("origin", "null")
                .header("access-control-request-method", "GET")
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{method} {base}");
            let headers = response.headers();
            assert_eq!(
                headers["access-control-allow-origin"], "null",
                "{method} {base}"
            );
            assert_eq!(headers["access-control-allow-credentials"], "true");
        }
        let anonymous = app.get(&format!("{base}/info")).await;
        let headers = anonymous.headers();
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert!(
            headers.get("access-control-allow-credentials").is_none(),
            "browsers refuse a wildcard origin with credentials"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_says_websocket_answers_any_origin_and_is_never_cached() {
    let app = spawn_app().await;
    for base in ["/ws/chat", "/ws/stomp"] {
        let response = app
            .http
            .get(app.url(&format!("{base}/info?t=1733480000000")))
            .header("origin", "http://spring.example:8080")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            header("access-control-allow-origin").as_deref(),
            Some("http://spring.example:8080")
        );
        assert_eq!(
            header("access-control-allow-credentials").as_deref(),
            Some("true")
        );
        assert!(header("cache-control").is_some_and(|c| c.contains("no-store")));
        assert!(header("content-type").is_some_and(|c| c.starts_with("application/json")));
        let info: Value = response.json().await.unwrap();
        assert_eq!(info["websocket"], true);
        assert_eq!(info["cookie_needed"], false);
        assert_eq!(info["origins"], json!(["*:*"]));
        assert!(info["entropy"].is_u64());

        let preflight = app
            .http
            .request(reqwest::Method::OPTIONS, app.url(&format!("{base}/info")))
            .header("origin", "http://spring.example:8080")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-custom")
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success(), "{}", preflight.status());
        let headers = preflight.headers();
        assert_eq!(
            headers["access-control-allow-origin"],
            "http://spring.example:8080"
        );
        assert!(
            headers["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("GET")
        );
        assert_eq!(headers["access-control-allow-headers"], "x-custom");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transports_that_need_server_side_sessions_answer_404() {
    let app = spawn_app().await;
    let requests = [
        (reqwest::Method::POST, "000/abcd/xhr"),
        (reqwest::Method::POST, "000/abcd/xhr_streaming"),
        (reqwest::Method::POST, "000/abcd/xhr_send"),
        (reqwest::Method::GET, "000/abcd/eventsource"),
        (reqwest::Method::GET, "000/abcd/htmlfile?c=_jp.abc"),
        (reqwest::Method::GET, "000/abcd/jsonp?c=_jp.abc"),
        (reqwest::Method::POST, "000/abcd/jsonp_send"),
        (reqwest::Method::GET, "iframe.html"),
        (reqwest::Method::GET, "iframe-1.6.1.html"),
    ];
    for base in ["/ws/chat", "/ws/stomp"] {
        for (method, path) in &requests {
            let response = app
                .http
                .request(method.clone(), app.url(&format!("{base}/{path}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{method} {base}/{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_transport_opens_with_o_and_carries_chat_frames_in_batches() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;
    let mut alice = SockJs::open(app.port, "/ws/chat").await;

    let enter = json!({"type": "ENTER", "roomId": room_id, "sender": "alice"});
    let talk = json!({"type": "TALK", "roomId": room_id, "sender": "alice", "message": "hi", "clientMsgId": "c-1"});
    alice.send(&[enter.to_string(), talk.to_string()]).await;

    let frames = alice.next_json(2).await;
    assert_eq!(
        (&frames[0]["type"], &frames[1]["type"]),
        (&json!("ENTER"), &json!("TALK"))
    );
    assert_eq!(frames[1]["clientMsgId"], "c-1");
    assert_eq!(frames[0], bob.next_of_type("ENTER").await);
    assert_eq!(frames[1], bob.next_of_type("TALK").await);

    bob.talk(&room_id, "bob", "hello sockjs").await;
    assert_eq!(alice.next_json(1).await[0]["message"], "hello sockjs");

    alice.send(&["{not json".to_owned()]).await;
    assert_eq!(alice.next_json(1).await[0]["code"], "INVALID_JSON");

    drop(alice);
    assert_eq!(bob.next_of_type("TALK").await["sender"], "bob");
    assert_eq!(bob.next_of_type("LEAVE").await["sender"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_that_is_not_a_sockjs_array_gets_c_then_the_close() {
    let app = spawn_app().await;
    for (base, text) in [
        ("/ws/chat", "not json"),
        ("/ws/chat", "{\"type\":\"ENTER\"}"),
        ("/ws/stomp", "[1,2]"),
    ] {
        let mut client = SockJs::open(app.port, base).await;
        client.send_raw(text.to_owned()).await;

        let Sent::Close(code, reason) = client.next().await else {
            panic!("{base} {text}: expected c[...]");
        };
        assert_eq!(code, 1002, "{base} {text}");
        assert!(!reason.is_empty());
        assert_eq!(client.next().await, Sent::Closed(Some(1002)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_close_is_announced_with_c_code_and_reason() {
    let app = spawn_app().await;
    let mut client = SockJs::open(app.port, "/ws/chat").await;

    app.stop().await;

    assert_eq!(
        client.next().await,
        Sent::Close(1001, "server is shutting down".into())
    );
    assert_eq!(client.next().await, Sent::Closed(Some(1001)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_travels_over_sockjs_too() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut client = SockJs::open(app.port, "/ws/stomp").await;
    let topic = format!("/sub/chat/room/{room_id}");
    let enter = json!({"type": "ENTER", "roomId": room_id, "sender": "alice"}).to_string();

    client
        .send(&[frame(
            "CONNECT",
            &[("accept-version", "1.1,1.0"), ("heart-beat", "0,0")],
            "",
        )])
        .await;
    let connected = next_stomp(&mut client).await;
    assert!(
        connected.starts_with("CONNECTED\nversion:1.1\n"),
        "{connected:?}"
    );
    client
        .send(&[
            frame("SUBSCRIBE", &[("id", "sub-0"), ("destination", &topic)], ""),
            frame("SEND", &[("destination", "/pub/chat/message")], &enter),
        ])
        .await;

    let message = next_stomp(&mut client).await;
    assert!(message.starts_with("MESSAGE\n"), "{message:?}");
    assert!(message.contains(&format!("\ndestination:{topic}\n")));
    let body = message
        .split_once("\n\n")
        .unwrap()
        .1
        .strip_suffix('\0')
        .unwrap();
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (&event["type"], &event["sender"]),
        (&json!("ENTER"), &json!("alice"))
    );
}

/// The next STOMP frame a SockJS batch carries.
async fn next_stomp(client: &mut SockJs) -> String {
    loop {
        match client.next().await {
            Sent::Batch(mut batch) => {
                assert_eq!(batch.len(), 1, "one frame per batch here: {batch:?}");
                return batch.remove(0);
            }
            Sent::HeartBeat => {}
            other => panic!("expected a batch, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_websocket_is_the_plain_endpoint_again() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let url = format!("ws://127.0.0.1:{}/ws/chat/websocket", app.port);
    let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("opens");
    let mut alice = crate::helpers::WsClient { ws };

    let enter = alice.join(&room_id, "alice").await;

    assert_eq!(enter["sender"], "alice", "no o, no a[...]: plain frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_travel_over_sockjs_as_on_the_plain_endpoint() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = SockJs::open(app.port, "/ws/chat").await;
    let enter = json!({"type": "ENTER", "roomId": room_id, "sender": "alice"});
    let talk = json!({"type": "TALK", "roomId": room_id, "sender": "alice", "message": "hi"});
    alice.send(&[enter.to_string(), talk.to_string()]).await;
    let talk = alice.next_json(2).await.pop().unwrap();

    let changes = [
        json!({"type": "EDIT", "roomId": room_id, "sender": "alice", "targetSeq": talk["seq"], "message": "hi!"}),
        json!({"type": "REACT", "roomId": room_id, "sender": "alice", "targetSeq": talk["seq"], "emoji": "👋"}),
        json!({"type": "DELETE", "roomId": room_id, "sender": "alice", "targetSeq": talk["seq"]}),
        json!({"type": "EDIT", "roomId": room_id, "sender": "alice", "targetSeq": talk["seq"], "message": "too late"}),
    ];
    alice
        .send(&changes.iter().map(Value::to_string).collect::<Vec<_>>())
        .await;

    // A refusal is sent at once, while the events wait for their commit: match by kind.
    let answers = alice.next_json(4).await;
    let (errors, events): (Vec<&Value>, Vec<&Value>) =
        answers.iter().partition(|frame| frame["type"] == "ERROR");
    let kinds: Vec<&Value> = events.iter().map(|event| &event["type"]).collect();
    assert_eq!(kinds, ["EDIT", "REACT", "DELETE"]);
    let seqs: Vec<&Value> = events.iter().map(|event| &event["seq"]).collect();
    assert_eq!(seqs, [3, 4, 5]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["code"], "TARGET_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_reaches_a_sockjs_session_as_on_the_plain_endpoint() {
    let app = crate::helpers::spawn_app_with(super::identity::identity_mode).await;
    let alice = super::identity::token_for("alice");
    let room_id = super::identity::create_room_as(&app, &alice).await;
    let mut bob = SockJs::open_as(app.port, "/ws/chat", &super::identity::token_for("bob")).await;
    let enter = json!({"type": "ENTER", "roomId": room_id, "sender": "bob"});
    bob.send(&[enter.to_string()]).await;
    assert_eq!(bob.next_json(1).await[0]["type"], "ENTER");

    let kicked = app
        .http
        .delete(app.url(&format!("/api/rooms/{room_id}/members/bob")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), 204);
    let frames = bob.next_json(2).await;
    assert_eq!(
        (&frames[0]["type"], &frames[0]["action"]),
        (&json!("MODERATION"), &json!("kick"))
    );
    assert_eq!(
        frames[1],
        json!({"type": "REMOVED", "roomId": room_id, "reason": "kicked"})
    );
    let talk = json!({"type": "TALK", "roomId": room_id, "sender": "bob", "message": "hi"});
    bob.send(&[talk.to_string()]).await;
    assert_eq!(bob.next_json(1).await[0]["code"], "NOT_IN_ROOM");
}
