//! The real binary, stopped by a real SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{connect, connect_small_buffer};

struct Process {
    child: Child,
    port: u16,
}

/// Starts the binary on a free port and reads the port from its "listening" log line.
fn start_binary(db: &Path) -> Process {
    start_binary_with(db, &[])
}

fn start_binary_with(db: &Path, env: &[(&str, &str)]) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
        .envs(env.iter().copied())
        .env("CHAT_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("CHAT_LOG_FORMAT", "json")
        .env("CHAT_RATE_LIMIT", "off")
        .env("RUST_LOG", "info")
        .env_remove("REDIS_URL")
        .env_remove("CHAT_PORT")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("a listening line")
            .expect("readable stdout");
        let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if log["fields"]["message"] == "listening" {
            let addr = log["fields"]["addr"].as_str().expect("addr field");
            break addr.rsplit_once(':').unwrap().1.parse().expect("port");
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Process { child, port }
}

impl Process {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

async fn json(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.expect("the request is answered");
    response.json().await.expect("a JSON body")
}

async fn create_room(server: &Process) -> String {
    let create = reqwest::Client::new().post(server.url("/api/rooms"));
    let room = json(create.json(&serde_json::json!({"name": "general"}))).await;
    room["roomId"].as_str().expect("roomId").to_owned()
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..1500 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("the process did not exit within 15 s of SIGTERM");
}

/// The stored events of a room, read from a fresh process on the same database.
async fn history_after_restart(db: &Path, room_id: &str) -> Vec<serde_json::Value> {
    let mut restarted = start_binary(db);
    let url = restarted.url(&format!("/api/rooms/{room_id}/messages?limit=500"));
    let page = json(reqwest::Client::new().get(url)).await;
    sigterm(&restarted.child);
    assert!(wait_for_exit(&mut restarted.child).success());
    page["items"].as_array().expect("items").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sessions_with_1001_at_once_stores_everything_and_exits_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let mut server = start_binary(&db);
    let room_id = create_room(&server).await;
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
    sigterm(&server.child);

    assert_eq!(alice.expect_close().await, 1001);
    let closed_after = signalled.elapsed();
    let status = wait_for_exit(&mut server.child);
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

    let items = history_after_restart(&db, &room_id).await;
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
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let mut server = start_binary_with(&db, &[("CHAT_SHUTDOWN_TIMEOUT_SECS", "2")]);
    let room_id = create_room(&server).await;
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
    sigterm(&server.child);

    assert_eq!(talker.expect_close().await, 1001);
    let status = wait_for_exit(&mut server.child);
    let exited_after = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        exited_after < Duration::from_millis(3500),
        "exited after {exited_after:?}"
    );
    let items = history_after_restart(&db, &room_id).await;
    let leavers: Vec<&str> = items
        .iter()
        .filter(|e| e["type"] == "LEAVE")
        .map(|e| e["sender"].as_str().unwrap())
        .collect();
    assert_eq!(leavers.len(), 2, "both LEAVEs were stored: {leavers:?}");
    assert!(leavers.contains(&"stalled"));
    drop(stalled);
}
