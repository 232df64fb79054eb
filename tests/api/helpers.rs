//! The test harness: a real server on a free port over real storage (a temporary SQLite file,
//! or a fresh PostgreSQL database when the suite runs on PostgreSQL), a real HTTP client, a
//! real WebSocket client, and typed helpers so tests read like the contract.

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
        http: reqwest::Client::new(),
        shutdown,
        server,
        data,
    }
}

/// A connection to the server's storage beside the server's own, for tests that reach under
/// the service.
pub enum Side {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Side {
    /// Runs SQL, one statement or several.
    pub async fn execute(&mut self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        let done = match self {
            Side::Sqlite(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop),
            Side::Postgres(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop),
        };
        done.expect("side statement");
    }

    async fn count(&mut self, sql: String) -> i64 {
        let sql = AssertSqlSafe(sql);
        match self {
            Side::Sqlite(conn) => sqlx::query_scalar(sql).fetch_one(conn).await,
            Side::Postgres(conn) => sqlx::query_scalar(sql).fetch_one(conn).await,
        }
        .expect("a count")
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
        let data = self.stop().await;
        spawn_app_on(data, |_| {}).await
    }

    pub async fn side(&self) -> Side {
        let url = self.data.url();
        match BACKEND {
            Backend::Sqlite => Side::Sqlite(SqliteConnection::connect(&url).await.expect("side")),
            Backend::Postgres => Side::Postgres(PgConnection::connect(&url).await.expect("side")),
        }
    }

    /// Runs SQL on a side connection.
    pub async fn sql(&self, statement: &str) {
        self.side().await.execute(statement).await;
    }

    /// Makes storage refuse every event that matches `condition` (SQL over `NEW`), as a failing
    /// disk or a violated constraint would, until [`TestApp::accept_events`].
    pub async fn refuse_events(&self, condition: &str) {
        self.sql(&match BACKEND {
            Backend::Sqlite => format!(
                "CREATE TRIGGER refuse_events BEFORE INSERT ON events WHEN {condition} \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            ),
            Backend::Postgres => format!(
                "CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF {condition} THEN RAISE EXCEPTION 'refused by the test'; END IF; \
                 RETURN NEW; END $$; \
                 CREATE TRIGGER refuse_events BEFORE INSERT ON events \
                 FOR EACH ROW EXECUTE FUNCTION refuse_events();"
            ),
        })
        .await;
    }

    pub async fn accept_events(&self) {
        self.sql(match BACKEND {
            Backend::Sqlite => "DROP TRIGGER refuse_events",
            Backend::Postgres => {
                "DROP TRIGGER refuse_events ON events; DROP FUNCTION refuse_events()"
            }
        })
        .await;
    }

    /// Holds what the server's writer needs to store anything (SQLite's write lock, or the
    /// rooms table of PostgreSQL) on a side connection, so the writer waits for it and whatever
    /// clients send meanwhile queues up behind it.
    pub async fn hold_write_lock(&self) -> WriteLock {
        let mut side = self.side().await;
        side.execute(match BACKEND {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN; LOCK TABLE rooms IN EXCLUSIVE MODE",
        })
        .await;
        WriteLock { side }
    }

    /// Stores `count` TALKs in a room straight through storage (setup only).
    pub async fn fill_room(&self, room_id: &str, count: u64) {
        self.sql(&match BACKEND {
            Backend::Sqlite => format!(
                "WITH RECURSIVE n(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM n WHERE seq < {count}) \
                 INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
                 SELECT '{room_id}', seq, lower(hex(randomblob(16))), 'TALK', 'filler', 'x', NULL, 0 FROM n"
            ),
            Backend::Postgres => format!(
                "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
                 SELECT '{room_id}', seq, gen_random_uuid(), 'TALK', 'filler', 'x', NULL, 0 \
                 FROM generate_series(1, {count}) AS seq"
            ),
        })
        .await;
        self.sql(&format!(
            "UPDATE rooms SET last_seq = {count} WHERE room_id = '{room_id}'"
        ))
        .await;
    }

    /// How many events storage holds for a room, deleted or not.
    pub async fn stored_events(&self, room_id: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM events WHERE room_id = '{room_id}'");
        self.side().await.count(sql).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// POSTs a body as given, under any content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &'static str,
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.http
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE")
    }

    /// Creates a room and returns its id.
    pub async fn create_room(&self, name: &str) -> String {
        let response = self.post_json("/api/rooms", &json!({ "name": name })).await;
        assert_eq!(response.status(), 201, "creating room {name:?}");
        let room: Value = response.json().await.expect("room JSON");
        room["roomId"].as_str().expect("roomId").to_owned()
    }

    pub async fn room(&self, room_id: &str) -> Value {
        let response = self.get(&format!("/api/rooms/{room_id}")).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("room JSON")
    }

    pub async fn history(&self, room_id: &str, query: &str) -> Vec<Value> {
        let response = self
            .get(&format!("/api/rooms/{room_id}/messages{query}"))
            .await;
        assert_eq!(response.status(), 200, "history{query}");
        let page: Value = response.json().await.expect("history JSON");
        page["items"].as_array().expect("items").clone()
    }

    pub async fn connect(&self) -> WsClient {
        connect(self.port).await
    }

    /// Polls `/metrics` until every line is there.
    pub async fn wait_for_metrics(&self, lines: &[&str]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let response = self.get("/metrics").await;
            assert_eq!(response.status(), 200);
            let text = response.text().await.expect("metrics text");
            let missing: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|line| !text.lines().any(|l| l == *line))
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "missing {missing:?} in\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn scrape(&self) -> Scrape {
        Scrape(
            self.get("/metrics")
                .await
                .text()
                .await
                .expect("metrics text"),
        )
    }

    /// Polls `/metrics` until `ready` holds.
    pub async fn wait_for_scrape(&self, what: &str, ready: impl Fn(&Scrape) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let scrape = self.scrape().await;
            if ready(&scrape) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never {what}:\n{}",
                scrape.0
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `/metrics` until the series (name and labels, as printed) reaches `at_least`.
    pub async fn wait_for_metric_at_least(&self, series: &str, at_least: f64) {
        let what = format!("{series} >= {at_least}");
        self.wait_for_scrape(&what, |scrape| scrape.value(series) >= at_least)
            .await;
    }

    /// Waits until the writer has taken everything queued for it, `queued` appends in all:
    /// the newest is the one it is storing (or stored).
    pub async fn wait_for_writer_to_take(&self, queued: u32) {
        let what = format!("the writer took all of {queued} appends");
        self.wait_for_scrape(&what, |scrape| {
            let appends = |metric: &str| scrape.value(&format!("{metric}{{command=\"append\"}}"));
            appends("chat_writer_queued_total") == f64::from(queued)
                && appends("chat_writer_taken_total") == f64::from(queued)
        })
        .await;
    }

    /// Waits until `queued` appends in all have reached the writer's queue.
    pub async fn wait_for_writer_queue(&self, queued: u32) {
        let series = "chat_writer_queued_total{command=\"append\"}";
        self.wait_for_metric_at_least(series, f64::from(queued))
            .await;
    }

    /// Polls a room until its member count is `expected` (membership changes are async).
    pub async fn wait_for_member_count(&self, room_id: &str, expected: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let count = self.room(room_id).await["memberCount"].as_u64();
            if count == Some(expected) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "memberCount stayed {count:?}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One reading of `/metrics`.
pub struct Scrape(String);

impl Scrape {
    /// A series' value (name and labels, as printed); 0 while it is absent.
    pub fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().ok()).flatten()
            })
            .unwrap_or(0.0)
    }
}

/// What the writer needs, held on a side connection until released.
pub struct WriteLock {
    side: Side,
}

impl WriteLock {
    pub async fn release(mut self) {
        self.side.execute("COMMIT").await;
    }
}

/// Asserts a problem+json response with this status and code.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

#[derive(Debug)]
pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send_json(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn enter(&mut self, room_id: &str, sender: &str) {
        self.send_json(json!({"type": "ENTER", "roomId": room_id, "sender": sender}))
            .await;
    }

    pub async fn enter_after(&mut self, room_id: &str, sender: &str, last_seq: u64) {
        self.send_json(
            json!({"type": "ENTER", "roomId": room_id, "sender": sender, "lastSeq": last_seq}),
        )
        .await;
    }

    pub async fn talk(&mut self, room_id: &str, sender: &str, message: &str) {
        self.send_json(
            json!({"type": "TALK", "roomId": room_id, "sender": sender, "message": message}),
        )
        .await;
    }

    pub async fn talk_with_id(&mut self, room_id: &str, sender: &str, message: &str, id: &str) {
        self.send_json(json!({"type": "TALK", "roomId": room_id, "sender": sender, "message": message, "clientMsgId": id}))
            .await;
    }

    /// Sends `count` TALKs, then reads until each has been acknowledged, skipping other frames.
    pub async fn talk_and_await(&mut self, room_id: &str, sender: &str, text: &str, count: usize) {
        for _ in 0..count {
            self.talk(room_id, sender, text).await;
        }
        let mut acknowledged = 0;
        while acknowledged < count {
            let frame = self.next_json().await;
            if frame["type"] == "TALK" && frame["sender"] == sender {
                acknowledged += 1;
            }
        }
    }

    pub async fn leave(&mut self, room_id: &str, sender: &str) {
        self.send_json(json!({"type": "LEAVE", "roomId": room_id, "sender": sender}))
            .await;
    }

    /// Enters and consumes the session's own ENTER event.
    pub async fn join(&mut self, room_id: &str, sender: &str) -> Value {
        self.enter(room_id, sender).await;
        self.next_of_type("ENTER").await
    }

    /// The next text frame as JSON, skipping control frames.
    pub async fn next_json(&mut self) -> Value {
        self.try_next_json(WAIT)
            .await
            .expect("a frame arrives in time")
    }

    /// The next text frame within `wait`, or None.
    pub async fn try_next_json(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("server frames are JSON"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        let frame = self.next_json().await;
        assert_eq!(frame["type"], kind, "unexpected frame {frame}");
        frame
    }

    pub async fn next_error(&mut self, code: &str) -> Value {
        let frame = self.next_of_type("ERROR").await;
        assert_eq!(frame["code"], code, "{frame}");
        assert!(frame["message"].as_str().is_some_and(|m| !m.is_empty()));
        frame
    }

    /// Asserts that no text frame arrives for a while.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(frame) = self.try_next_json(wait).await {
            panic!("expected no frame, got {frame}");
        }
    }

    /// Reads until the server's close frame and returns its code.
    pub async fn expect_close(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("close arrives in time");
            match frame {
                Some(Ok(Message::Close(Some(close)))) => return u16::from(close.code),
                Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A WebSocket client of the server on this local port.
pub async fn connect(port: u16) -> WsClient {
    let url = format!("ws://127.0.0.1:{port}/ws/chat");
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket connects");
    WsClient { ws }
}

/// A client whose socket has a tiny receive buffer, so a test can stall it cheaply.
pub async fn connect_small_buffer(port: u16) -> WsClient {
    WsClient {
        ws: small_buffer_socket(port, "/ws/chat").await,
    }
}

/// A WebSocket to `path` over a socket with a tiny receive buffer.
pub async fn small_buffer_socket(
    port: u16,
    path: &str,
) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("TCP connects");
    let url = format!("ws://127.0.0.1:{port}{path}");
    let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .expect("WebSocket handshake");
    ws
}

/// Opens a WebSocket from a local address with extra request headers, or returns the status
/// and body of the refused upgrade.
pub async fn try_connect(
    port: u16,
    from: std::net::IpAddr,
    headers: &[(&'static str, &'static str)],
) -> Result<WsClient, (u16, Value)> {
    try_upgrade(port, from, "/ws/chat", headers)
        .await
        .map_err(|refused| (refused.status, refused.problem))
}

/// An upgrade the server answered with an HTTP error instead.
#[derive(Debug)]
pub struct RefusedUpgrade {
    pub status: u16,
    pub problem: Value,
    pub challenge: Option<String>,
}

/// Opens a WebSocket on `path` (which may carry a query) from a local address with extra
/// request headers, or returns how the upgrade was refused.
pub async fn try_upgrade(
    port: u16,
    from: std::net::IpAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<WsClient, RefusedUpgrade> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind((from, 0).into())
        .expect("bind the local address");
    let stream = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("TCP connects");
    let mut request = format!("ws://127.0.0.1:{port}{path}")
        .into_client_request()
        .expect("a request");
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await {
        Ok((ws, _)) => Ok(WsClient { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|value| value.to_str().expect("a readable challenge").to_owned());
            Err(RefusedUpgrade {
                status: response.status().as_u16(),
                problem: serde_json::from_slice(body).unwrap_or(Value::Null),
                challenge,
            })
        }
        Err(other) => panic!("the upgrade failed: {other}"),
    }
}

impl TestApp {
    pub async fn connect_small_buffer(&self) -> WsClient {
        connect_small_buffer(self.port).await
    }
}

impl TestApp {
    /// A room with alice and then bob in it, each having read every ENTER so far.
    pub async fn alice_and_bob_in_a_room(&self) -> (String, WsClient, WsClient) {
        let room_id = self.create_room("general").await;
        let mut alice = self.connect().await;
        let mut bob = self.connect().await;
        alice.join(&room_id, "alice").await;
        bob.join(&room_id, "bob").await;
        alice.next_of_type("ENTER").await;
        (room_id, alice, bob)
    }
}
