//! STOMP over WebSocket (PROTOCOL.md, "STOMP 1.2 over WebSocket"), frame by frame: the
//! handshake, subscriptions and their resume, SEND doing what the same frame does on
//! `/ws/chat`, receipts after storage, refusals, leaving, and limits.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::suite::stomp_client::{Frame, Next, StompClient, frame, open, open_small_buffer};

const QUIET: Duration = Duration::from_millis(300);

fn topic(room_id: &str) -> String {
    format!("/topic/rooms/{room_id}")
}

fn enter(room_id: &str, sender: &str) -> Value {
    json!({"type": "ENTER", "roomId": room_id, "sender": sender})
}

fn talk(room_id: &str, sender: &str, message: &str) -> Value {
    json!({"type": "TALK", "roomId": room_id, "sender": sender, "message": message})
}

/// A STOMP connection subscribed to the room and entered in it as `sender`, having read its
/// own ENTER.
async fn stomp_member(app: &TestApp, room_id: &str, sender: &str) -> (StompClient, Value) {
    let mut client = StompClient::connect(app.port).await;
    client.subscribe("room", &topic(room_id)).await;
    client.chat(enter(room_id, sender)).await;
    let event = client.next_event().await;
    assert_eq!(
        (&event["type"], &event["sender"]),
        (&json!("ENTER"), &json!(sender))
    );
    (client, event)
}

mod framing;
mod handshake;
mod identity;
mod lifecycle;
mod moderation;
mod sending;
mod subscriptions;
