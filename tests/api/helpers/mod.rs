//! The test harness: a real server on a free port over real storage (a temporary SQLite file,
//! or a fresh PostgreSQL database when the suite runs on PostgreSQL), a real HTTP client, a
//! real WebSocket client, and typed helpers so tests read like the contract: the server and its
//! storage here, requests and metrics in [`http`], storage reached from the side in
//! [`storage`], WebSocket clients in [`client`].

use std::sync::Arc;
use std::time::Duration;

use chat::config::{Settings, Toggle};
use chat::startup::Application;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::BACKEND;
use crate::test_database::TestDatabase;

/// How long a test waits for a frame it expects before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// The storage a test binary runs the suite on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test server keeps its data; it outlives the server's restarts.
pub enum Data {
    File(TempDir),
    Database(TestDatabase),
}

impl Data {
    /// Fresh, empty storage on the suite's backend.
    pub async fn new() -> Arc<Data> {
        Arc::new(match BACKEND {
            Backend::Sqlite => Data::File(tempfile::tempdir().expect("temp dir")),
            Backend::Postgres => Data::Database(TestDatabase::create().await),
        })
    }

    pub fn url(&self) -> String {
        match self {
            Data::File(dir) => format!("sqlite://{}", dir.path().join("chat.db").display()),
            Data::Database(database) => database.url.clone(),
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    data: Arc<Data>,
}

/// Settings for tests: loopback, port 0, the given storage, rate limits off unless a test
/// turns them on.
pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::from_env().expect("default settings parse");
    settings.addr = "127.0.0.1:0".into();
    settings.port = None;
    settings.database_url = database_url.parse().expect("infallible");
    settings.redis_url = None;
    settings.workers = Some(2);
    settings.rate_limit = Toggle::Off;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(Data::new().await, configure).await
}

/// A server on the given storage, which outlives it.
pub async fn spawn_app_on(data: Arc<Data>, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(&data.url());
    configure(&mut settings);
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        http: http_client(),
        shutdown,
        server,
        data,
    }
}

impl TestApp {
    /// Stops gracefully and waits until the server has flushed and exited.
    pub async fn stop(self) -> Arc<Data> {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("server stops in time")
            .expect("server task did not panic");
        result.expect("server exits cleanly");
        self.data
    }

    /// Stops this instance and starts a new one on the same storage.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// Stops this instance and starts a new one on the same storage with these settings.
    pub async fn restart_with(self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let data = self.stop().await;
        spawn_app_on(data, configure).await
    }
}

mod client;
mod http;
pub mod receiver;
mod storage;

pub use client::*;
pub use http::*;
