//! Hostile and broken clients: floods, drips, pipelined frames racing each other, readers that
//! stop reading. Each test drives over the wire what an attacker (or a buggy client) would,
//! and checks that the contract still holds for everyone else.

use std::time::Duration;

use chat::config::{Settings, Toggle};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{WAIT, WsClient, spawn_app, spawn_app_with};

/// Rate limits at their defaults (they are off in tests unless asked for).
fn default_limits(settings: &mut Settings) {
    settings.rate_limit = Toggle::On;
}

/// Sends a ping and waits for its pong, answering nothing else; the text frames that come
/// meanwhile are counted.
async fn ping_pong(client: &mut WsClient, payload: &[u8]) -> Result<usize, String> {
    client
        .ws
        .send(Message::Ping(payload.to_vec().into()))
        .await
        .expect("ping");
    let mut texts = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, client.ws.next()).await {
            Err(_) => return Err(format!("no pong in {WAIT:?} ({texts} text frames)")),
            Ok(Some(Ok(Message::Pong(echoed)))) if echoed[..] == *payload => return Ok(texts),
            Ok(Some(Ok(Message::Text(_)))) => texts += 1,
            Ok(Some(Ok(_))) => {}
            Ok(other) => return Err(format!("the connection ended: {other:?}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_is_answered_even_past_the_frame_rate_limit() {
    let app = spawn_app_with(default_limits).await;
    let mut client = app.connect().await;
    for round in 0..8u8 {
        for _ in 0..43 {
            client.send_text("not json").await;
        }
        let mut codes = Vec::new();
        for _ in 0..43 {
            let error = client.next_of_type("ERROR").await;
            codes.push(error["code"].as_str().unwrap_or_default().to_owned());
        }
        assert!(
            codes
                .iter()
                .all(|code| code == "INVALID_JSON" || code == "RATE_LIMITED"),
            "{codes:?}"
        );
        if let Err(why) = ping_pong(&mut client, &[round]).await {
            panic!("round {round}: {why}");
        }
    }
    client.send_text("not json").await;
    let last = client.next_of_type("ERROR").await;
    assert!(last["code"].is_string(), "the session still reads: {last}");
}

/// A room entered with `"echo": false` gets an `ACK` for each of its TALKs and never the
/// full copy, even when a READ queued just before the TALK is stored in the same batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_off_gets_only_the_ack_when_a_read_shares_the_talks_batch() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice
        .send_json(json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "echo": false}))
        .await;
    let enter = alice.next_of_type("ENTER").await;

    for round in 0..5u32 {
        let lock = app.hold_write_lock().await;
        alice
            .talk_with_id(&room_id, "alice", "held", &format!("held-{round}"))
            .await;
        app.wait_for_writer_to_take(2 + 2 * round).await;
        alice
            .send_json(
                json!({"type": "READ", "roomId": room_id, "sender": "alice", "seq": enter["seq"]}),
            )
            .await;
        alice
            .talk_with_id(&room_id, "alice", "after a read", &format!("c-{round}"))
            .await;
        app.wait_for_writer_queue(3 + 2 * round).await;
        lock.release().await;

        let mut acks = Vec::new();
        while acks.len() < 2 {
            let frame = alice.next_json().await;
            match frame["type"].as_str() {
                Some("ACK") => acks.push(frame["clientMsgId"].clone()),
                Some("READ") => {}
                _ => panic!("round {round}: only ACKs and READ notices, got {frame}"),
            }
        }
        assert_eq!(
            acks,
            [json!(format!("held-{round}")), json!(format!("c-{round}"))]
        );
    }
    alice.expect_silence(Duration::from_millis(300)).await;
}
