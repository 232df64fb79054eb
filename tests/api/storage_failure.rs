//! Storage failing under a running server: clear errors, no internals, nothing half-stored.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_answers_unavailable_leaks_nothing_and_loses_no_seq() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    app.sql("ALTER TABLE events RENAME TO events_away").await;
    alice.talk_with_id(&room_id, "alice", "lost?", "c-1").await;
    let error = alice.next_error("UNAVAILABLE").await;
    assert_eq!(error["clientMsgId"], "c-1");
    let history = app.get(&format!("/api/rooms/{room_id}/messages")).await;
    let problem = assert_problem(history, 503, "UNAVAILABLE").await;
    let detail = problem["detail"].as_str().unwrap().to_lowercase();
    for internal in ["events", "sql", "table", "database"] {
        assert!(!detail.contains(internal), "leaked {internal:?}: {detail}");
    }

    app.sql("ALTER TABLE events_away RENAME TO events").await;
    alice.talk(&room_id, "alice", "back").await;
    let event = bob.next_of_type("TALK").await;
    assert_eq!(
        event["message"], "back",
        "bob never saw the TALK that was not stored"
    );
    assert_eq!(event["seq"], 3, "the failed TALK took no seq");
    assert_eq!(app.history(&room_id, "").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_store_refuses_fails_alone_and_the_rest_of_its_batch_is_stored() {
    let app = spawn_app().await;
    let here = app.create_room("here").await;
    let there = app.create_room("there").await;
    let mut alice = app.connect().await;
    let mut bob = app.connect().await;
    alice.join(&here, "alice").await;
    bob.join(&there, "bob").await;
    app.refuse_events("NEW.message = 'poison'").await;

    // The writer takes "first" alone and waits for the lock; everything after it queues up and
    // goes into the next batch together.
    let lock = app.hold_write_lock().await;
    alice.talk_with_id(&here, "alice", "first", "c-1").await;
    app.wait_for_writer_to_take(3).await;
    alice.talk_with_id(&here, "alice", "poison", "c-2").await;
    alice.talk_with_id(&here, "alice", "after", "c-3").await;
    bob.talk_with_id(&there, "bob", "fine", "c-4").await;
    app.wait_for_writer_queue(3 + 3).await;
    lock.release().await;

    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let frame = alice.next_json().await;
        outcomes.push((
            frame["clientMsgId"].clone(),
            frame["type"].clone(),
            frame["seq"].clone(),
        ));
    }
    outcomes.sort_by_key(|(id, ..)| id.to_string());
    assert_eq!(
        outcomes,
        [
            (json!("c-1"), json!("TALK"), json!(2)),
            (json!("c-2"), json!("ERROR"), Value::Null),
            (json!("c-3"), json!("TALK"), json!(3)),
        ]
    );
    assert_eq!(bob.next_of_type("TALK").await["clientMsgId"], "c-4");
    let stored: Vec<Value> = app
        .history(&here, "")
        .await
        .iter()
        .map(|e| e["message"].clone())
        .collect();
    assert_eq!(
        stored,
        [
            json!("alice entered the room."),
            json!("first"),
            json!("after")
        ]
    );
    assert_eq!(app.history(&there, "").await.len(), 2);
}
