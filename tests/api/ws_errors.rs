use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, WsClient, spawn_app};

const QUIET: Duration = Duration::from_millis(300);

/// A room, and alice in it.
async fn alice_in_a_room(app: &TestApp) -> (String, WsClient) {
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    (room_id, alice)
}

/// After an error the connection is still usable.
async fn assert_still_open(client: &mut WsClient, room_id: &str, sender: &str) {
    client
        .talk_with_id(room_id, sender, "still here", "probe")
        .await;
    let event = client.next_of_type("TALK").await;
    assert_eq!(event["clientMsgId"], "probe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_is_not_json_is_invalid_json_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let (room_id, mut alice) = alice_in_a_room(&app).await;

    alice.send_text("{this is not json").await;

    let error = alice.next_error("INVALID_JSON").await;
    assert!(error.get("roomId").is_none());
    assert_still_open(&mut alice, &room_id, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_of_the_wrong_shape_are_invalid_message() {
    let app = spawn_app().await;
    let (room_id, mut alice) = alice_in_a_room(&app).await;
    let frames = [
        json!([1, 2, 3]),
        json!("ENTER"),
        json!({"roomId": room_id, "sender": "alice"}),
        json!({"type": "SHOUT", "roomId": room_id, "sender": "alice"}),
        json!({"type": "talk", "roomId": room_id, "sender": "alice", "message": "x"}),
        json!({"type": "TALK", "roomId": room_id, "sender": "alice"}),
        json!({"type": "TALK", "roomId": room_id, "sender": "alice", "message": ""}),
        json!({"type": "TALK", "roomId": room_id, "sender": "", "message": "x"}),
        json!({"type": "TALK", "roomId": room_id, "sender": "a".repeat(65), "message": "x"}),
        json!({"type": "TALK", "roomId": room_id, "sender": "alice", "message": 5}),
        json!({"type": "ENTER", "roomId": "not-a-uuid", "sender": "alice"}),
        json!({"type": "ENTER", "sender": "alice"}),
        json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "lastSeq": -1}),
        json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "lastSeq": "3"}),
    ];
    for frame in frames {
        alice.send_json(frame.clone()).await;
        let error = alice.next_error("INVALID_MESSAGE").await;
        assert!(error["message"].as_str().is_some(), "for {frame}");
    }
    assert_still_open(&mut alice, &room_id, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_echoes_the_frames_room_id_and_client_msg_id() {
    let app = spawn_app().await;
    let (room_id, mut alice) = alice_in_a_room(&app).await;

    alice
        .send_json(json!({"type": "TALK", "roomId": room_id, "sender": 7, "message": "x", "clientMsgId": "c-1"}))
        .await;
    let error = alice.next_error("INVALID_MESSAGE").await;
    assert_eq!(error["roomId"], room_id);
    assert_eq!(error["clientMsgId"], "c-1");

    alice
        .send_json(json!({"type": "TALK", "roomId": room_id, "sender": "mallory", "message": "x", "clientMsgId": "c-2"}))
        .await;
    let error = alice.next_error("SENDER_MISMATCH").await;
    assert_eq!(error["roomId"], room_id);
    assert_eq!(error["clientMsgId"], "c-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entering_an_unknown_room_is_room_not_found() {
    let app = spawn_app().await;
    let mut alice = app.connect().await;
    let missing = uuid::Uuid::new_v4().to_string();

    alice
        .send_json(
            json!({"type": "ENTER", "roomId": missing, "sender": "alice", "clientMsgId": "e-1"}),
        )
        .await;

    let error = alice.next_error("ROOM_NOT_FOUND").await;
    assert_eq!(error["roomId"], missing);
    assert_eq!(error["clientMsgId"], "e-1", "the refused ENTER is named");
    let room_id = app.create_room("real").await;
    alice.join(&room_id, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_or_leave_before_enter_is_not_in_room() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;

    alice.talk_with_id(&room_id, "alice", "hi", "c-3").await;
    let error = alice.next_error("NOT_IN_ROOM").await;
    assert_eq!(error["clientMsgId"], "c-3");
    assert_eq!(error["roomId"], room_id);
    alice.leave(&room_id, "alice").await;
    alice.next_error("NOT_IN_ROOM").await;

    assert_eq!(app.room(&room_id).await["lastSeq"], 0, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talking_or_leaving_under_another_sender_is_sender_mismatch() {
    let app = spawn_app().await;
    let (room_id, mut alice) = alice_in_a_room(&app).await;

    alice.talk(&room_id, "mallory", "hi").await;
    alice.next_error("SENDER_MISMATCH").await;
    alice.leave(&room_id, "mallory").await;
    alice.next_error("SENDER_MISMATCH").await;
    alice.enter(&room_id, "mallory").await;
    alice.next_error("SENDER_MISMATCH").await;

    assert_eq!(app.room(&room_id).await["lastSeq"], 1, "nothing was stored");
    assert_still_open(&mut alice, &room_id, " alice ").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_4000_characters_is_message_too_long() {
    let app = spawn_app().await;
    let (room_id, mut alice) = alice_in_a_room(&app).await;

    alice
        .talk_with_id(&room_id, "alice", &"x".repeat(4001), "long")
        .await;
    let error = alice.next_error("MESSAGE_TOO_LONG").await;
    assert_eq!(error["clientMsgId"], "long");

    alice.talk(&room_id, "alice", &"한".repeat(4000)).await;
    let event = alice.next_of_type("TALK").await;
    assert_eq!(event["message"].as_str().unwrap().chars().count(), 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_go_only_to_the_session_that_caused_them() {
    let app = spawn_app().await;
    let (room_id, mut alice) = alice_in_a_room(&app).await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;
    alice.next_of_type("ENTER").await;

    bob.send_text("garbage").await;
    bob.talk(&room_id, "mallory", "x").await;
    bob.next_error("INVALID_JSON").await;
    bob.next_error("SENDER_MISMATCH").await;

    alice.expect_silence(QUIET).await;
}
