//! Presence that outlives a process: members of one killed without a goodbye leave, and an
//! instance the others took for dead closes its sessions without anyone leaving twice.

use std::time::Duration;

use chat::config::Settings;
use serde_json::Value;

use crate::helpers::{Data, WAIT, connect, spawn_app_with};
use crate::process::ChatProcess;

/// Heartbeats every 200 ms; 1 s of silence means death.
fn fast_liveness(s: &mut Settings) {
    s.heartbeat_ms = 200;
    s.instance_timeout_ms = 1000;
}

fn start(data: &Data) -> ChatProcess {
    let url = data.url();
    ChatProcess::start(&[
        ("DATABASE_URL", &url),
        ("CHAT_HEARTBEAT_MS", "200"),
        ("CHAT_INSTANCE_TIMEOUT_MS", "1000"),
    ])
}

async fn get(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_a_process_killed_without_a_goodbye_leave_once_another_takes_over() {
    let data = Data::new().await;
    let mut first = start(&data);
    let room_id = first.create_room(None).await;
    let mut alice = connect(first.port).await;
    alice.join(&room_id, "alice").await;

    first.kill();
    let second = start(&data);

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let room = get(second.url(&format!("/api/rooms/{room_id}"))).await;
        if room["memberCount"] == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice never left: {room}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let history = get(second.url(&format!("/api/rooms/{room_id}/messages"))).await;
    let events: Vec<(&str, &str)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["sender"].as_str().unwrap()))
        .collect();
    assert_eq!(events, [("ENTER", "alice"), ("LEAVE", "alice")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_taken_for_dead_closes_its_sessions_and_nobody_leaves_twice() {
    let app = spawn_app_with(fast_liveness).await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    // What another instance does when it reaps this one, short of storing the LEAVEs.
    app.sql("DELETE FROM members; DELETE FROM instances").await;

    assert_eq!(alice.expect_close().await, 1012);
    assert_eq!(bob.expect_close().await, 1012);
    let mut back = app.connect().await;
    let enter = back.join(&room_id, "alice").await;
    assert_eq!(
        enter["seq"], 3,
        "the closed sessions stored no LEAVE: their memberships were gone"
    );
    app.wait_for_member_count(&room_id, 1).await;
    back.talk(&room_id, "alice", "back").await;
    assert_eq!(back.next_of_type("TALK").await["seq"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_hangs_up_while_storage_is_down_still_leaves_once_it_is_back() {
    let app = crate::helpers::spawn_app().await;
    let (room_id, mut alice, bob) = app.alice_and_bob_in_a_room().await;

    app.sql("ALTER TABLE events RENAME TO events_away").await;
    bob.close().await;
    app.wait_for_metrics(&["chat_connections 1"]).await;
    alice
        .talk_with_id(&room_id, "alice", "anyone?", "c-1")
        .await;
    assert_eq!(alice.next_error("UNAVAILABLE").await["clientMsgId"], "c-1");
    app.sql("ALTER TABLE events_away RENAME TO events").await;

    let leave = alice.next_of_type("LEAVE").await;
    assert_eq!(leave["sender"], "bob");
    assert_eq!(leave["seq"], 3, "nothing else was stored meanwhile");
    app.wait_for_member_count(&room_id, 1).await;
}
