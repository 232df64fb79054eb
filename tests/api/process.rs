//! Real processes for the tests that need them: the chat binary itself (so signals and kill -9
//! are real), a private Redis the test may stop and start, and a TCP proxy that can cut a
//! service off as a failing network would.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::copy_bidirectional;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

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

/// A Redis of the test's own, on a port of its own, keeping nothing on disk.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts it (again) on its port and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests: run scripts/test, which installs it");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it: every connection to it drops, and what it held is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Forwards a local port to a server; `cut` drops every connection and refuses new ones
/// until `restore`.
pub struct Proxy {
    pub port: u16,
    cut: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl Proxy {
    pub async fn start(upstream: (String, u16)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a proxy port");
        let port = listener.local_addr().expect("its address").port();
        let cut = Arc::new(Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let (now_cut, stopped) = (cut.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stopped.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                let token = now_cut.lock().expect("the cut").clone();
                if token.is_cancelled() {
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        Self { port, cut, stop }
    }

    pub fn cut(&self) {
        self.cut.lock().expect("the cut").cancel();
    }

    pub fn restore(&self) {
        *self.cut.lock().expect("the cut") = CancellationToken::new();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut();
    }
}
