//! The real binary, stopped by a real SIGTERM.

use std::time::{Duration, Instant};

use crate::helpers::{Data, connect, connect_small_buffer};
use crate::process::ChatProcess;

/// The binary over the test's storage.
fn start_binary_with(data: &Data, env: &[(&str, &str)]) -> ChatProcess {
    let url = data.url();
    let mut env = env.to_vec();
    env.push(("DATABASE_URL", &url));
    ChatProcess::start(&env)
}

fn start_binary(data: &Data) -> ChatProcess {
    start_binary_with(data, &[])
}

async fn json(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.expect("the request is answered");
    response.json().await.expect("a JSON body")
}

/// The stored events of a room, read from a fresh process on the same database.
async fn history_after_restart(data: &Data, room_id: &str) -> Vec<serde_json::Value> {
    let mut restarted = start_binary(data);
    let url = restarted.url(&format!("/api/rooms/{room_id}/messages?limit=500"));
    let page = json(crate::helpers::http_client().get(url)).await;
    restarted.sigterm();
    assert!(restarted.wait().success());
    page["items"].as_array().expect("items").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sessions_with_1001_at_once_stores_everything_and_exits_promptly() {
    let data = Data::new().await;
    let mut server = start_binary(&data);
    let room_id = server.create_room(None).await;
    let mut alice = connect(server.port).await;
    alice.join(&room_id, "alice").await;
    for i in 0..50 {
        alice.talk(&room_id, "alice", &format!("m{i}")).await;
    }
    let mut acknowledged = Vec::new();
    for _ in 0..20 {
        let ack = alice.next_of_type("TALK").await;
        acknowledged.push(ack["messageId"].as_str().unwrap().to_owned());
    }

    let signalled = Instant::now();
    server.sigterm();

    assert_eq!(alice.expect_close().await, 1001);
    let closed_after = signalled.elapsed();
    let status = server.wait();
    let exited_after = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        closed_after < Duration::from_secs(1),
        "1001 came after {closed_after:?}"
    );
    assert!(
        exited_after < Duration::from_secs(2),
        "exited after {exited_after:?}"
    );

    let items = history_after_restart(&data, &room_id).await;
    let seqs: Vec<u64> = items.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free"
    );
    assert_eq!(
        items.last().unwrap()["type"],
        "LEAVE",
        "the shutdown LEAVE was stored"
    );
    let stored: Vec<&str> = items
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    for id in &acknowledged {
        assert!(
            stored.contains(&id.as_str()),
            "acknowledged TALK {id} was lost"
        );
    }
    let talks = items.iter().filter(|e| e["type"] == "TALK").count();
    assert!((20..=50).contains(&talks), "{talks} TALKs stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_never_reads_cannot_hold_shutdown_past_the_drain_budget() {
    let data = Data::new().await;
    let mut server = start_binary_with(&data, &[("CHAT_SHUTDOWN_TIMEOUT_SECS", "2")]);
    let room_id = server.create_room(None).await;
    let mut stalled = connect_small_buffer(server.port).await;
    stalled.join(&room_id, "stalled").await;
    let mut talker = connect(server.port).await;
    talker.join(&room_id, "talker").await;
    // About 6 MB the stalled member never reads: its socket is full, so not even a close
    // frame can reach it.
    let text = "x".repeat(4000);
    for _ in 0..1500 / 8 {
        talker.talk_and_await(&room_id, "talker", &text, 8).await;
    }

    let signalled = Instant::now();
    server.sigterm();

    assert_eq!(talker.expect_close().await, 1001);
    let status = server.wait();
    let exited_after = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        exited_after < Duration::from_millis(3500),
        "exited after {exited_after:?}"
    );
    let items = history_after_restart(&data, &room_id).await;
    let leavers: Vec<&str> = items
        .iter()
        .filter(|e| e["type"] == "LEAVE")
        .map(|e| e["sender"].as_str().unwrap())
        .collect();
    assert_eq!(leavers.len(), 2, "both LEAVEs were stored: {leavers:?}");
    assert!(leavers.contains(&"stalled"));
    drop(stalled);
}
