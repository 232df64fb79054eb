use std::num::NonZeroU32;

use chat::config::{Settings, Toggle};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{assert_problem, spawn_app_with};

pub fn bursts_of_3_then_1_frame_a_second(s: &mut Settings) {
    s.rate_limit = Toggle::On;
    s.ws_rate_per_sec = NonZeroU32::new(1).unwrap();
    s.ws_burst = NonZeroU32::new(3).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_over_its_frame_rate_gets_rate_limited_and_stays_open() {
    let app = spawn_app_with(bursts_of_3_then_1_frame_a_second).await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;

    for i in 0..6 {
        alice
            .talk_with_id(&room_id, "alice", "x", &format!("c-{i}"))
            .await;
    }
    // A refusal is immediate while an acknowledgement waits for its commit, so they may
    // arrive in either order; and a slow run may refill a token. Count outcomes instead.
    let (mut accepted, mut limited) = (0, 0);
    for _ in 0..6 {
        let frame = alice.next_json().await;
        assert!(
            frame["clientMsgId"].as_str().is_some(),
            "each outcome names its frame: {frame}"
        );
        match (frame["type"].as_str(), frame["code"].as_str()) {
            (Some("TALK"), _) => accepted += 1,
            (Some("ERROR"), Some("RATE_LIMITED")) => limited += 1,
            _ => panic!("unexpected {frame}"),
        }
    }
    assert!(
        limited >= 3,
        "burst 3 (ENTER took one) at 1/s: {limited} of 6 refused"
    );
    assert_eq!(
        app.room(&room_id).await["lastSeq"],
        1 + accepted,
        "refused TALKs were not stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_session_may_send_100_talks_in_a_second() {
    let app = spawn_app_with(|s| s.rate_limit = Toggle::On).await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;

    for i in 0..100 {
        alice.talk(&room_id, "alice", &format!("burst {i}")).await;
    }
    for i in 0..100 {
        let event = alice.next_of_type("TALK").await;
        assert_eq!(event["message"], format!("burst {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_request_rate_gets_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.rate_limit = Toggle::On;
        s.http_rate_per_min = NonZeroU32::new(5).unwrap();
    })
    .await;
    for _ in 0..5 {
        assert_eq!(app.get("/api/rooms").await.status(), 200);
    }

    let refused = app
        .post_json("/api/rooms", &json!({"name": "one too many"}))
        .await;

    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_problem(refused, 429, "RATE_LIMITED").await;
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "operations are not limited"
    );
    crate::helpers::tls_ready();
    let other_address = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let response = other_address
        .get(app.url("/api/rooms"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the limit is per address");
    let page: serde_json::Value = response.json().await.unwrap();
    assert!(
        page["items"].as_array().unwrap().is_empty(),
        "the refused POST created nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_an_address_may_make_1000_requests_in_a_minute() {
    let app = spawn_app_with(|s| s.rate_limit = Toggle::On).await;
    for i in 0..1000 {
        let status = app.get("/api/rooms?limit=1").await.status();
        assert_eq!(status, 200, "request {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_are_not_valid_count_against_the_frame_rate_too() {
    let app = spawn_app_with(bursts_of_3_then_1_frame_a_second).await;
    let mut mallory = app.connect().await;

    for _ in 0..6 {
        mallory.send_text("not json").await;
    }
    let mut limited = 0;
    for _ in 0..6 {
        let error = mallory.next_of_type("ERROR").await;
        match error["code"].as_str() {
            Some("RATE_LIMITED") => limited += 1,
            Some("INVALID_JSON") => {}
            _ => panic!("unexpected {error}"),
        }
    }
    assert!(
        limited >= 2,
        "burst 3 at 1/s: {limited} of 6 refused as RATE_LIMITED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_count_against_the_frame_rate() {
    let app = spawn_app_with(bursts_of_3_then_1_frame_a_second).await;
    let mut alice = app.connect().await;

    for _ in 0..4 {
        alice
            .ws
            .send(Message::Ping(Vec::new().into()))
            .await
            .unwrap();
    }
    alice.send_text("not json").await;

    let refused = alice.next_of_type("ERROR").await;
    assert_eq!(
        refused["code"], "RATE_LIMITED",
        "the pings used up the burst: {refused}"
    );
}
