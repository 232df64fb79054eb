//! Who is typing (PROTOCOL.md, "Typing"): TYPING notices reach the room's other sessions,
//! are never stored, and go out at most once a second per sender and room.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use chat::config::Toggle;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

pub fn typing(room_id: &str, sender: &str) -> Value {
    json!({"type": "TYPING", "roomId": room_id, "sender": sender})
}

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_the_other_sessions_only_and_is_not_stored() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
    let mut alices_phone = app.connect().await;
    alices_phone.join(&room_id, "alice").await;
    for client in [&mut alice, &mut bob] {
        client.next_of_type("ENTER").await;
    }
    let elsewhere_id = app.create_room("elsewhere").await;
    let mut elsewhere = app.connect().await;
    elsewhere.join(&elsewhere_id, "carol").await;

    alice.send_json(typing(&room_id, "alice")).await;

    let expected = json!({"type": "TYPING", "roomId": room_id, "sender": "alice"});
    assert_eq!(bob.next_json().await, expected);
    assert_eq!(
        alices_phone.next_json().await,
        expected,
        "another session of alice's"
    );
    alice.expect_silence(QUIET).await;
    elsewhere.expect_silence(Duration::ZERO).await;
    assert_eq!(app.room(&room_id).await["lastSeq"], 3, "nothing stored");
    assert_eq!(app.history(&room_id, "").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_goes_out_at_most_once_a_second_per_sender_and_room() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    let started = Instant::now();
    for _ in 0..5 {
        alice.send_json(typing(&room_id, "alice")).await;
    }
    assert_eq!(bob.next_json().await["type"], "TYPING");
    bob.expect_silence(QUIET).await;

    // Bob typing is his own count.
    bob.send_json(typing(&room_id, "bob")).await;
    assert_eq!(alice.next_json().await["sender"], "bob");

    // Alice keeps typing: the next notice goes out a second after the first.
    let second = loop {
        alice.send_json(typing(&room_id, "alice")).await;
        if let Some(notice) = bob.try_next_json(Duration::from_millis(100)).await {
            break (notice, started.elapsed());
        }
    };
    assert_eq!(second.0["sender"], "alice");
    assert!(second.1 >= Duration::from_secs(1), "after {:?}", second.1);
    assert!(
        second.1 < Duration::from_millis(1600),
        "after {:?}",
        second.1
    );
    let dropped = "chat_notices_total{type=\"typing\",outcome=\"dropped\"}";
    app.wait_for_metric_at_least(dropped, 4.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_needs_the_room_and_its_own_sender() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;

    alice.send_json(typing(&room_id, "alice")).await;
    let refused = alice.next_error("NOT_IN_ROOM").await;
    assert_eq!(refused["roomId"], room_id);
    alice.join(&room_id, "alice").await;
    alice.send_json(typing(&room_id, "mallory")).await;
    alice.next_error("SENDER_MISMATCH").await;
    for bad in [
        json!({"type": "TYPING", "roomId": room_id}),
        json!({"type": "TYPING", "sender": "alice"}),
        json!({"type": "TYPING", "roomId": "nope", "sender": "alice"}),
        json!({"type": "TYPING", "roomId": room_id, "sender": 7}),
    ] {
        alice.send_json(bad).await;
        alice.next_error("INVALID_MESSAGE").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_counts_against_the_frame_rate() {
    let app = spawn_app_with(|s| {
        s.rate_limit = Toggle::On;
        s.ws_rate_per_sec = NonZeroU32::new(1).unwrap();
        s.ws_burst = NonZeroU32::new(3).unwrap();
    })
    .await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;

    for _ in 0..4 {
        alice.send_json(typing(&room_id, "alice")).await;
    }

    let refused = alice.next_error("RATE_LIMITED").await;
    assert_eq!(refused["roomId"], room_id);
}
