//! Who has read what (PROTOCOL.md, "Read markers"): READ raises a sender's marker in a room,
//! which is stored, shown as `readSeq` and, when it rose, sent to the room's members.

use serde_json::{Value, json};

use crate::helpers::{WsClient, spawn_app};
use crate::suite::members::members;

pub fn read(room_id: &str, sender: &str, seq: Value) -> Value {
    json!({"type": "READ", "roomId": room_id, "sender": sender, "seq": seq})
}

/// Reads until the next READ notice, skipping events.
pub async fn next_read(client: &mut WsClient) -> Value {
    loop {
        let frame = client.next_json().await;
        if frame["type"] == "READ" {
            return frame;
        }
        assert_ne!(frame["type"], "ERROR", "{frame}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_marker_that_rises_is_stored_and_sent_to_the_members() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
    alice.talk_and_await(&room_id, "alice", "hello", 3).await;
    for _ in 0..3 {
        bob.next_of_type("TALK").await;
    }

    bob.send_json(read(&room_id, "bob", json!(4))).await;

    let expected = json!({"type": "READ", "roomId": room_id, "sender": "bob", "seq": 4});
    assert_eq!(alice.next_json().await, expected);
    assert_eq!(
        bob.next_json().await,
        expected,
        "the reader's own sessions too"
    );
    let list = members(&app, &room_id).await;
    assert_eq!(list["items"][1]["sender"], "bob");
    assert_eq!(list["items"][1]["readSeq"], 4);
    assert_eq!(list["items"][0]["readSeq"], 0, "alice read nothing");
    assert_eq!(app.room(&room_id).await["lastSeq"], 5, "no event stored");

    // Lower or equal changes nothing; past the newest counts as the newest.
    for seq in [json!(2), json!(4), json!(0)] {
        bob.send_json(read(&room_id, "bob", seq)).await;
    }
    bob.send_json(read(&room_id, "bob", json!(i64::MAX))).await;
    assert_eq!(
        next_read(&mut alice).await["seq"],
        5,
        "nothing for 2, 4 or 0"
    );
    assert_eq!(members(&app, &room_id).await["items"][1]["readSeq"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seq_that_is_not_an_integer_from_0_to_2_pow_63_minus_1_is_invalid() {
    let app = spawn_app().await;
    let (room_id, mut alice, _bob) = app.alice_and_bob_in_a_room().await;

    for seq in [
        json!(-1),
        json!(1.5),
        json!("3"),
        json!(9_223_372_036_854_775_808u64),
        json!(null),
        json!([]),
    ] {
        let mut frame = read(&room_id, "alice", seq.clone());
        frame["clientMsgId"] = json!("r-1");
        alice.send_json(frame).await;
        let refused = alice.next_error("INVALID_MESSAGE").await;
        assert_eq!(refused["clientMsgId"], "r-1", "seq {seq}");
    }
    alice
        .send_json(json!({"type": "READ", "roomId": room_id, "sender": "alice"}))
        .await;
    alice.next_error("INVALID_MESSAGE").await;
    assert_eq!(members(&app, &room_id).await["items"][0]["readSeq"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_needs_the_room_and_its_own_sender() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;

    alice.send_json(read(&room_id, "alice", json!(1))).await;
    alice.next_error("NOT_IN_ROOM").await;
    alice.join(&room_id, "alice").await;
    alice.send_json(read(&room_id, "mallory", json!(1))).await;
    alice.next_error("SENDER_MISMATCH").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_marker_survives_leaving_and_restarts() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
    bob.send_json(read(&room_id, "bob", json!(2))).await;
    assert_eq!(next_read(&mut alice).await["seq"], 2);
    bob.leave(&room_id, "bob").await;
    alice.next_of_type("LEAVE").await;
    drop((alice, bob));

    let app = app.restart().await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;

    let list = members(&app, &room_id).await;
    assert_eq!(list["items"][0]["sender"], "bob");
    assert_eq!(list["items"][0]["readSeq"], 2);
}
