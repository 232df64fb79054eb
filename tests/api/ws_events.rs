use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::spawn_app;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enter_broadcasts_an_enter_event_to_everyone_including_the_newcomer() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    let mut bob = app.connect().await;

    bob.enter(&room_id, " bob ").await;

    for client in [&mut alice, &mut bob] {
        let event = client.next_of_type("ENTER").await;
        assert_eq!(event["sender"], "bob");
        assert_eq!(event["message"], "bob entered the room.");
        assert_eq!(event["roomId"], room_id);
        assert_eq!(event["seq"], 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_carries_seq_message_id_and_sent_at() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;

    let enter = alice.join(&room_id, "alice").await;

    assert_eq!(enter["seq"], 1);
    assert!(uuid::Uuid::parse_str(enter["messageId"].as_str().unwrap()).is_ok());
    let sent_at = enter["sentAt"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(sent_at).is_ok());
    assert!(sent_at.ends_with('Z'));
    assert!(enter.get("clientMsgId").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_reaches_every_member_and_the_senders_copy_echoes_client_msg_id() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    alice.talk_with_id(&room_id, "alice", "hello", "c-17").await;

    let mine = alice.next_of_type("TALK").await;
    let theirs = bob.next_of_type("TALK").await;
    assert_eq!(mine, theirs, "every member gets the same event");
    assert_eq!(mine["message"], "hello");
    assert_eq!(mine["sender"], "alice");
    assert_eq!(mine["clientMsgId"], "c-17");
    assert_eq!(mine["seq"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enter_and_leave_echo_their_client_msg_id_on_their_events() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;

    let enter =
        json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "clientMsgId": "e-1"});
    alice.send_json(enter).await;
    let entered = alice.next_of_type("ENTER").await;
    let leave =
        json!({"type": "LEAVE", "roomId": room_id, "sender": "alice", "clientMsgId": "l-1"});
    alice.send_json(leave).await;

    assert_eq!(entered["clientMsgId"], "e-1");
    assert_eq!(bob.next_of_type("ENTER").await["clientMsgId"], "e-1");
    assert_eq!(bob.next_of_type("LEAVE").await["clientMsgId"], "l-1");
    let stored = app.history(&room_id, "").await;
    let ids: Vec<&Value> = stored.iter().map(|e| &e["clientMsgId"]).collect();
    assert_eq!(ids, [&Value::Null, &json!("e-1"), &json!("l-1")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_reaches_no_session_outside_the_room() {
    let app = spawn_app().await;
    let here = app.create_room("here").await;
    let elsewhere = app.create_room("elsewhere").await;
    let mut alice = app.connect().await;
    let mut carol = app.connect().await;
    let mut lurker = app.connect().await;
    alice.join(&here, "alice").await;
    carol.join(&elsewhere, "carol").await;

    alice.talk(&here, "alice", "secret").await;
    alice.next_of_type("TALK").await;

    carol.expect_silence(QUIET).await;
    lurker.expect_silence(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_is_broadcast_to_those_still_in_the_room() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    bob.leave(&room_id, "bob").await;

    let event = alice.next_of_type("LEAVE").await;
    assert_eq!(event["sender"], "bob");
    assert_eq!(event["message"], "bob left the room.");
    assert_eq!(event["seq"], 3);
    alice.talk(&room_id, "alice", "still here").await;
    alice.next_of_type("TALK").await;
    bob.expect_silence(QUIET).await;
    app.wait_for_member_count(&room_id, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_connection_broadcasts_leave() {
    let app = spawn_app().await;
    let (room_id, mut alice, bob) = app.alice_and_bob_in_a_room().await;

    drop(bob);

    let event = alice.next_of_type("LEAVE").await;
    assert_eq!(event["message"], "bob left the room.");
    app.wait_for_member_count(&room_id, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_enter_broadcasts_nothing_new() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    bob.enter(&room_id, "bob").await;
    bob.talk(&room_id, "bob", "after").await;

    let next = alice.next_json().await;
    assert_eq!(next["type"], "TALK", "no second ENTER: {next}");
    assert_eq!(next["seq"], 3);
    assert_eq!(app.room(&room_id).await["memberCount"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_can_be_in_several_rooms_at_once() {
    let app = spawn_app().await;
    let first = app.create_room("first").await;
    let second = app.create_room("second").await;
    let mut alice = app.connect().await;
    alice.join(&first, "alice").await;
    alice.join(&second, "alicia").await;

    alice.talk(&first, "alice", "one").await;
    alice.talk(&second, "alicia", "two").await;

    let a = alice.next_of_type("TALK").await;
    let b = alice.next_of_type("TALK").await;
    assert_eq!(
        (a["roomId"].as_str(), a["seq"].as_u64()),
        (Some(first.as_str()), Some(2))
    );
    assert_eq!(
        (b["roomId"].as_str(), b["seq"].as_u64()),
        (Some(second.as_str()), Some(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_is_per_room_and_grows_by_one_for_each_enter_talk_and_leave() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let other = app.create_room("other").await;
    let mut alice = app.connect().await;
    let mut bob = app.connect().await;
    let mut carol = app.connect().await;
    carol.join(&other, "carol").await;
    alice.join(&room_id, "alice").await;
    bob.join(&room_id, "bob").await;
    bob.talk(&room_id, "bob", "x").await;
    bob.leave(&room_id, "bob").await;
    let mut seen: Vec<(String, u64)> = Vec::new();
    for _ in 0..3 {
        let event: Value = alice.next_json().await;
        seen.push((
            event["type"].as_str().unwrap().to_owned(),
            event["seq"].as_u64().unwrap(),
        ));
    }
    alice.talk(&room_id, "alice", "y").await;
    let talk = alice.next_of_type("TALK").await;
    seen.push(("TALK".to_owned(), talk["seq"].as_u64().unwrap()));

    let expected = [("ENTER", 2), ("TALK", 3), ("LEAVE", 4), ("TALK", 5)];
    let expected: Vec<(String, u64)> = expected.iter().map(|(t, s)| (t.to_string(), *s)).collect();
    assert_eq!(seen, expected);
    assert_eq!(app.room(&room_id).await["lastSeq"], 5);
    assert_eq!(app.room(&other).await["lastSeq"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_room_sends_closed_to_members_and_detaches_them() {
    let app = spawn_app().await;
    let room_id = app.create_room("doomed").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;

    assert_eq!(
        app.delete(&format!("/api/rooms/{room_id}")).await.status(),
        204
    );

    let closed = alice.next_of_type("CLOSED").await;
    assert_eq!(closed["roomId"], room_id);
    alice.talk(&room_id, "alice", "anyone?").await;
    alice.next_error("NOT_IN_ROOM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_stored_before_it_is_seen() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;

    alice.talk(&room_id, "alice", "kept").await;
    let live = alice.next_of_type("TALK").await;

    let stored = app.history(&room_id, "").await;
    assert_eq!(stored.last(), Some(&live));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_sent_right_after_an_enter_or_a_leave_wait_for_it_and_go_through() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;

    // The writer waits on the lock with the first ENTER, so every later frame arrives while an
    // ENTER or LEAVE before it is still being stored.
    let lock = app.hold_write_lock().await;
    alice.enter(&room_id, "alice").await;
    alice.talk(&room_id, "alice", "first").await;
    alice.leave(&room_id, "alice").await;
    alice.enter(&room_id, "alice").await;
    alice.talk(&room_id, "alice", "again").await;
    app.wait_for_writer_to_take(1).await;
    lock.release().await;

    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = alice.next_json().await;
        seen.push((event["type"].clone(), event["seq"].clone()));
    }
    let expected = [("ENTER", 1), ("TALK", 2), ("ENTER", 4), ("TALK", 5)];
    let expected: Vec<(Value, Value)> =
        expected.iter().map(|(t, s)| (json!(t), json!(s))).collect();
    assert_eq!(
        seen, expected,
        "the leaver gets no event for its LEAVE (seq 3)"
    );
    assert_eq!(app.history(&room_id, "").await[2]["type"], "LEAVE");
}
