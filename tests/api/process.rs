//! The chat binary as a real process, for the tests that need one: signals, kill -9, and
//! everything it logs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The chat binary, with everything it prints kept.
pub struct ChatProcess {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<String>>,
}

impl ChatProcess {
    /// Starts the binary with these variables (JSON logs, rate limits off, a free port unless
    /// they say otherwise) and waits for its "listening" line.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
            .env_remove("REDIS_URL")
            .env_remove("CHAT_PORT")
            .env("CHAT_ADDR", "127.0.0.1:0")
            .env("CHAT_LOG_FORMAT", "json")
            .env("CHAT_RATE_LIMIT", "off")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = listening_port(&line) {
                    let _ = port_tx.send(port);
                }
                let mut log = kept.lock().expect("the log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        match port_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => Self { child, port, log },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the binary never said it was listening:\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Creates a room through its API (with a bearer token, in identity mode) and returns its id.
    pub async fn create_room(&self, bearer: Option<&str>) -> String {
        let mut request = crate::helpers::http_client().post(self.url("/api/rooms"));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request
            .json(&serde_json::json!({"name": "general"}))
            .send()
            .await
            .expect("the request is answered");
        assert_eq!(response.status(), 201);
        let room: serde_json::Value = response.json().await.expect("a room");
        room["roomId"].as_str().expect("roomId").to_owned()
    }

    /// Everything it printed so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("the log").clone()
    }

    pub fn sigterm(&self) {
        signal(&self.child, "-TERM");
    }

    /// Waits for the process to exit after a signal; fails after 15 s.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the process did not exit within 15 s");
    }

    /// Kills it with SIGKILL: no drain, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChatProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn listening_port(line: &str) -> Option<u16> {
    let log: serde_json::Value = serde_json::from_str(line).ok()?;
    if log["fields"]["message"] != "listening" {
        return None;
    }
    let addr = log["fields"]["addr"].as_str()?;
    addr.rsplit_once(':')?.1.parse().ok()
}

fn signal(child: &Child, which: &str) {
    let status = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}
