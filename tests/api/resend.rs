//! Resending is safe (PROTOCOL.md, "Resending is safe"): a TALK whose `clientMsgId` its sender
//! already used in the room is answered with the first, marked `"duplicate": true`, and is
//! never stored twice; a refused TALK does not use its id up.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

const QUIET: std::time::Duration = std::time::Duration::from_millis(300);

fn talk(room_id: &str, sender: &str, message: &str, id: &str) -> Value {
    json!({"type": "TALK", "roomId": room_id, "sender": sender, "message": message, "clientMsgId": id})
}

/// The first copy, as the sender gets it again.
fn as_duplicate(first: &Value) -> Value {
    let mut copy = first.clone();
    copy["duplicate"] = json!(true);
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_talk_comes_back_as_the_first_to_its_sender_only_and_is_stored_once() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
    alice
        .send_json(talk(&room_id, "alice", "hello", "c-17"))
        .await;
    let first = alice.next_of_type("TALK").await;
    assert_eq!(bob.next_of_type("TALK").await, first);
    assert!(first.get("duplicate").is_none());

    alice
        .send_json(talk(&room_id, "alice", "hello (edited)", "c-17"))
        .await;

    assert_eq!(alice.next_json().await, as_duplicate(&first));
    bob.expect_silence(QUIET).await;
    assert_eq!(app.room(&room_id).await["lastSeq"], 3);

    // From another connection, as after a dropped one.
    let mut back = app.connect().await;
    back.join(&room_id, "alice").await;
    back.send_json(talk(&room_id, "alice", "hello", "c-17"))
        .await;
    assert_eq!(back.next_json().await, as_duplicate(&first));
    assert_eq!(
        app.history(&room_id, "")
            .await
            .iter()
            .filter(|e| e["type"] == "TALK")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_id_from_another_sender_or_in_another_room_is_another_message() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
    let other_room = app.create_room("other").await;
    alice.join(&other_room, "alice").await;

    alice.send_json(talk(&room_id, "alice", "one", "c-1")).await;
    bob.send_json(talk(&room_id, "bob", "two", "c-1")).await;
    alice
        .send_json(talk(&other_room, "alice", "three", "c-1"))
        .await;

    let mut stored = Vec::new();
    while stored.len() < 3 {
        let frame = alice.next_json().await;
        assert!(frame.get("duplicate").is_none(), "{frame}");
        if frame["type"] == "TALK" {
            stored.push(frame["message"].as_str().unwrap().to_owned());
        }
    }
    stored.sort();
    assert_eq!(stored, ["one", "three", "two"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_pipelined_behind_the_first_comes_back_after_it() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    for _ in 0..3 {
        alice
            .send_json(talk(&room_id, "alice", "once", "c-1"))
            .await;
    }

    let first = alice.next_of_type("TALK").await;
    assert!(
        first.get("duplicate").is_none(),
        "the first copy comes first: {first}"
    );
    assert_eq!(alice.next_json().await, as_duplicate(&first));
    assert_eq!(alice.next_json().await, as_duplicate(&first));
    assert_eq!(bob.next_of_type("TALK").await, first);
    bob.expect_silence(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_echo_off_a_resend_gets_the_first_ack_marked_duplicate() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice
        .send_json(json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "echo": false}))
        .await;
    alice.next_of_type("ENTER").await;

    alice.send_json(talk(&room_id, "alice", "hi", "c-1")).await;
    let ack = alice.next_of_type("ACK").await;
    alice.send_json(talk(&room_id, "alice", "hi", "c-1")).await;

    assert_eq!(alice.next_json().await, as_duplicate(&ack));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_talk_does_not_use_its_id_up() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;

    alice
        .send_json(talk(&room_id, "alice", "too early", "c-1"))
        .await;
    alice.next_error("NOT_IN_ROOM").await;
    alice.join(&room_id, "alice").await;
    alice
        .send_json(talk(&room_id, "alice", &"x".repeat(4001), "c-1"))
        .await;
    alice.next_error("MESSAGE_TOO_LONG").await;
    app.refuse_events("NEW.message = 'refused by storage'")
        .await;
    alice
        .send_json(talk(&room_id, "alice", "refused by storage", "c-1"))
        .await;
    alice.next_error("UNAVAILABLE").await;
    app.accept_events().await;

    alice
        .send_json(talk(&room_id, "alice", "at last", "c-1"))
        .await;
    let stored = alice.next_of_type("TALK").await;
    assert!(stored.get("duplicate").is_none());
    assert_eq!(stored["message"], "at last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_after_a_restart_is_still_recognised() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    alice
        .send_json(talk(&room_id, "alice", "before", "c-1"))
        .await;
    let first = alice.next_of_type("TALK").await;
    drop(alice);

    let app = app.restart().await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    alice
        .send_json(talk(&room_id, "alice", "before", "c-1"))
        .await;

    assert_eq!(alice.next_json().await, as_duplicate(&first));
}
