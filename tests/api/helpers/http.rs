//! Requests to the server and what it says: REST calls, problems, metrics and the waits on
//! them.

use super::*;

/// Gives the process's TLS the crypto provider the server uses (ring), as the server does.
pub fn tls_ready() {
    chat::webhooks::install_tls_provider();
}

/// A plain HTTP client, with TLS ready.
pub fn http_client() -> reqwest::Client {
    tls_ready();
    reqwest::Client::new()
}

impl TestApp {
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
        self.wait_for_room_field(room_id, "memberCount", expected)
            .await;
    }

    /// Polls a room until `field` of the Room is `expected` (a background step changes it).
    pub async fn wait_for_room_field(&self, room_id: &str, field: &str, expected: u64) {
        let path = format!("/api/rooms/{room_id}");
        self.wait_for_json(&path, None, |room| room[field].as_u64() == Some(expected))
            .await;
    }

    /// Polls a JSON resource (with this bearer token, when given) until `ready` holds of it,
    /// and returns it; fails with the last answer after [`WAIT`].
    pub async fn wait_for_json(
        &self,
        path: &str,
        token: Option<&str>,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let request = self.http.get(self.url(path));
            let request = match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            let response = request.send().await.expect("a response");
            let body: Value = response.json().await.expect("JSON");
            if ready(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never became as awaited: {body}"
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
