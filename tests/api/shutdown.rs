//! The real binary, stopped by a real SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::WsClient;

struct Process {
    child: Child,
    port: u16,
}

/// Starts the binary on a free port and reads the port from its "listening" log line.
fn start_binary(db: &Path) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
        .env("CHAT_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("CHAT_LOG_FORMAT", "json")
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

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

async fn connect(port: u16) -> WsClient {
    let url = format!("ws://127.0.0.1:{port}/ws/chat");
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    WsClient { ws }
}

fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..300 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the process did not exit within 15 s of SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sessions_with_1001_stores_everything_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let mut server = start_binary(&db);
    let http = reqwest::Client::new();
    let create = http.post(server.url("/api/rooms"));
    let room = json(create.json(&serde_json::json!({"name": "general"}))).await;
    let room_id = room["roomId"].as_str().unwrap().to_owned();
    let mut alice = connect(server.port).await;
    alice.join(&room_id, "alice").await;
    for i in 0..50 {
        alice.talk(&room_id, "alice", &format!("m{i}")).await;
    }

    sigterm(&server.child);

    assert_eq!(alice.expect_close().await, 1001);
    let status = wait_for_exit(&mut server.child);
    assert!(status.success(), "exit status {status}");

    let mut restarted = start_binary(&db);
    let history = restarted.url(&format!("/api/rooms/{room_id}/messages?limit=500"));
    let page = json(http.get(history)).await;
    let items = page["items"].as_array().unwrap();
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
    let talks = items.iter().filter(|e| e["type"] == "TALK").count();
    assert!(talks <= 50);
    sigterm(&restarted.child);
    assert!(wait_for_exit(&mut restarted.child).success());
}
