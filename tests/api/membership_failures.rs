//! ENTER and LEAVE that storage refuses: the sender is told, and presence stays what history says.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{WsClient, spawn_app};

/// Reads `count` frames and returns them keyed by their `clientMsgId`.
async fn outcomes(client: &mut WsClient, count: usize) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    for _ in 0..count {
        let frame = client.next_json().await;
        let id = frame["clientMsgId"].as_str().unwrap_or_default().to_owned();
        seen.push((id, frame));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_enter_leaves_the_session_out_and_stores_nothing_pipelined_after_it() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    app.refuse_events("NEW.kind = 'ENTER' AND NEW.sender = 'ghost'")
        .await;
    let mut ghost = app.connect().await;

    // The writer waits for the lock with the ENTER, so the TALK arrives while it is pending.
    let lock = app.hold_write_lock().await;
    ghost
        .send_json(json!({"type": "ENTER", "roomId": room_id, "sender": "ghost", "clientMsgId": "a-enter"}))
        .await;
    ghost
        .send_json(json!({"type": "TALK", "roomId": room_id, "sender": "ghost", "message": "boo", "clientMsgId": "b-talk"}))
        .await;
    app.wait_for_writer_to_take(2).await;
    lock.release().await;

    let seen = outcomes(&mut ghost, 2).await;
    assert_eq!(seen[0].1["code"], "UNAVAILABLE", "{:?}", seen[0]);
    assert_eq!(seen[1].1["code"], "NOT_IN_ROOM", "{:?}", seen[1]);
    alice.expect_silence(Duration::from_millis(300)).await;
    let room = app.room(&room_id).await;
    assert_eq!(
        (room["lastSeq"].as_u64(), room["memberCount"].as_u64()),
        (Some(1), Some(1))
    );

    app.accept_events().await;
    assert_eq!(ghost.join(&room_id, "ghost").await["seq"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_that_cannot_be_stored_is_refused_and_the_member_stays_in_the_room() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
    app.refuse_events("NEW.kind = 'LEAVE'").await;

    bob.send_json(
        json!({"type": "LEAVE", "roomId": room_id, "sender": "bob", "clientMsgId": "l-1"}),
    )
    .await;

    let error = bob.next_error("UNAVAILABLE").await;
    assert_eq!(error["clientMsgId"], "l-1");
    assert_eq!(app.room(&room_id).await["memberCount"], 2);
    alice.talk(&room_id, "alice", "are you still here?").await;
    assert_eq!(
        bob.next_of_type("TALK").await["seq"],
        3,
        "bob is still in the room"
    );
    bob.talk(&room_id, "bob", "yes").await;
    assert_eq!(alice.next_of_type("TALK").await["seq"], 3);
    assert_eq!(alice.next_of_type("TALK").await["seq"], 4);

    app.accept_events().await;
    bob.leave(&room_id, "bob").await;
    let leave = alice.next_of_type("LEAVE").await;
    assert_eq!(
        (leave["sender"].as_str(), leave["seq"].as_u64()),
        (Some("bob"), Some(5))
    );
    app.wait_for_member_count(&room_id, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talk_right_after_an_enter_into_a_missing_room_is_not_in_room() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::new_v4().to_string();
    let mut alice = app.connect().await;

    alice
        .send_json(json!({"type": "ENTER", "roomId": missing, "sender": "alice", "clientMsgId": "a-enter"}))
        .await;
    alice
        .send_json(json!({"type": "TALK", "roomId": missing, "sender": "alice", "message": "hi", "clientMsgId": "b-talk"}))
        .await;

    let seen = outcomes(&mut alice, 2).await;
    assert_eq!(seen[0].1["code"], "ROOM_NOT_FOUND", "{:?}", seen[0]);
    assert_eq!(seen[1].1["code"], "NOT_IN_ROOM", "{:?}", seen[1]);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l == "chat_rooms_active 0"),
        "{metrics}"
    );
}

/// Makes storage fail for LEAVEs: refused alone by a trigger, or with their whole batch.
#[derive(Debug, Clone, Copy)]
enum LeaveFailure {
    Refused,
    WholeBatch,
}

async fn fail_leaves(app: &crate::helpers::TestApp, how: LeaveFailure) {
    match how {
        LeaveFailure::Refused => app.refuse_events("NEW.kind = 'LEAVE'").await,
        LeaveFailure::WholeBatch => app.sql("ALTER TABLE events RENAME TO events_away").await,
    }
}

async fn store_leaves(app: &crate::helpers::TestApp, how: LeaveFailure) {
    match how {
        LeaveFailure::Refused => app.accept_events().await,
        LeaveFailure::WholeBatch => app.sql("ALTER TABLE events_away RENAME TO events").await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_leaves_and_hangs_up_while_its_leave_fails_still_leaves_once() {
    for (how, reason) in [
        (LeaveFailure::Refused, "rejected"),
        (LeaveFailure::WholeBatch, "unavailable"),
    ] {
        let app = spawn_app().await;
        let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
        fail_leaves(&app, how).await;

        bob.leave(&room_id, "bob").await;
        bob.close().await;
        app.wait_for_metrics(&["chat_connections 1"]).await;
        let failures = format!("chat_append_failures_total{{reason=\"{reason}\"}}");
        app.wait_for_metric_at_least(&failures, 1.0).await;
        store_leaves(&app, how).await;

        let leave = alice.next_of_type("LEAVE").await;
        assert_eq!(
            (leave["sender"].as_str(), leave["seq"].as_u64()),
            (Some("bob"), Some(3)),
            "{how:?}"
        );
        app.wait_for_member_count(&room_id, 1).await;
        alice.talk(&room_id, "alice", "alone").await;
        assert_eq!(
            alice.next_of_type("TALK").await["seq"],
            4,
            "{how:?}: bob left once"
        );
    }
}
