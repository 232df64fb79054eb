//! The write path under the faults real networks have (PROTOCOL.md: an event is broadcast only
//! after it is stored; nothing is lost or stored twice): a connection that dies as it carries a
//! COMMIT, one that stops answering mid-transaction. PostgreSQL through a proxy the test breaks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::faults::{Proxy, postgres_server, through};
use crate::helpers::{Data, TestApp, WAIT, spawn_app_on};
use crate::test_database::TestDatabase;

/// The simple-query message sqlx sends to commit.
const COMMIT: &[u8] = b"COMMIT\0";

/// A server on a fresh PostgreSQL database, reached through `proxy`.
async fn spawn_app_on_postgres_via(proxy: &Proxy) -> TestApp {
    let data = Arc::new(Data::Database(TestDatabase::create().await));
    let url = through(&data.url(), proxy);
    spawn_app_on(data, |settings| {
        settings.database_url = url.parse().expect("infallible")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_stores_its_events_once_and_acknowledges_them() {
    let proxy = Proxy::start(postgres_server()).await;
    let app = spawn_app_on_postgres_via(&proxy).await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    proxy.cut_after(COMMIT);
    alice.talk_with_id(&room_id, "alice", "once", "c-1").await;

    let ack = alice.next_json().await;
    assert_eq!(
        proxy.sprung(),
        1,
        "the COMMIT went through the proxy, and was cut"
    );
    assert_eq!(
        (ack["type"].as_str(), ack["clientMsgId"].as_str()),
        (Some("TALK"), Some("c-1")),
        "the sender is told its TALK was stored, not UNAVAILABLE: {ack}"
    );
    assert_eq!(ack["seq"], 3);
    let seen = bob.next_of_type("TALK").await;
    assert_eq!(
        (seen["seq"].as_u64(), seen["messageId"].clone()),
        (Some(3), ack["messageId"].clone())
    );
    alice.talk_with_id(&room_id, "alice", "next", "c-2").await;
    assert_eq!(
        bob.next_of_type("TALK").await["seq"],
        4,
        "no copy came between"
    );

    let history = app.history(&room_id, "").await;
    let talks: Vec<&str> = history
        .iter()
        .filter(|event| event["type"] == "TALK")
        .map(|event| event["clientMsgId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(talks, ["c-1", "c-2"], "each TALK stored once");
    let ids: HashSet<&Value> = history.iter().map(|event| &event["messageId"]).collect();
    assert_eq!(ids.len(), history.len(), "every messageId once");
}

/// Waits until the proxy's trap went off.
async fn sprung(proxy: &Proxy) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while proxy.sprung() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trap never went off"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Storage cut off right as it was sent a COMMIT: until it is back and says whether that
/// COMMIT landed, nobody hears of the batch, and every later append is refused at once with
/// UNAVAILABLE (not held for the outage); readiness says so. Once it is back, the batch is
/// answered as it turned out, and the service goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_commit_is_in_doubt_later_appends_are_refused_at_once() {
    let proxy = Proxy::start(postgres_server()).await;
    let app = spawn_app_on_postgres_via(&proxy).await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    proxy.cut_everything_after(COMMIT);
    alice
        .talk_with_id(&room_id, "alice", "in doubt", "c-1")
        .await;
    sprung(&proxy).await;
    for i in 0..3 {
        let started = Instant::now();
        bob.talk_with_id(&room_id, "bob", "later", &format!("b-{i}"))
            .await;
        let refusal = bob.next_error("UNAVAILABLE").await;
        assert_eq!(refusal["clientMsgId"], format!("b-{i}"));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "refused in {:?}",
            started.elapsed()
        );
    }
    assert_eq!(app.get("/readyz").await.status(), 503);
    alice.expect_silence(Duration::from_millis(300)).await;

    proxy.restore();
    let outcome = alice.next_json().await;
    let landed = match (outcome["type"].as_str(), outcome["code"].as_str()) {
        (Some("TALK"), _) => true,
        (Some("ERROR"), Some("UNAVAILABLE")) => false,
        _ => panic!("the TALK in doubt is answered: {outcome}"),
    };
    assert_eq!(outcome["clientMsgId"], "c-1");
    bob.talk_with_id(&room_id, "bob", "back", "b-back").await;
    loop {
        let event = bob.next_json().await;
        if event["clientMsgId"] == "b-back" {
            assert_eq!(event["type"], "TALK", "{event}");
            break;
        }
    }
    let history = app.history(&room_id, "").await;
    let talks: Vec<&str> = history
        .iter()
        .filter(|event| event["type"] == "TALK")
        .filter_map(|event| event["clientMsgId"].as_str())
        .collect();
    let expected: &[&str] = if landed {
        &["c-1", "b-back"]
    } else {
        &["b-back"]
    };
    assert_eq!(talks, expected);
}

/// SIGTERM while storage is cut off with a COMMIT in doubt: the service still stops within
/// its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_commit_in_doubt_and_storage_gone_finishes_in_time() {
    let proxy = Proxy::start(postgres_server()).await;
    let app = spawn_app_on_postgres_via(&proxy).await;
    let (room_id, mut alice, _bob) = app.alice_and_bob_in_a_room().await;

    proxy.cut_everything_after(COMMIT);
    alice
        .talk_with_id(&room_id, "alice", "in doubt", "c-1")
        .await;
    sprung(&proxy).await;
    let started = Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "stopped in {:?}",
        started.elapsed()
    );
}

/// A network that goes silent in the middle of a read (the connection open, no answer ever
/// coming) holds the request no longer than the read deadline: it is answered 503, and reads
/// work again once the network does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_answer_never_comes_is_given_up_in_seconds() {
    let proxy = Proxy::start(postgres_server()).await;
    let app = spawn_app_on_postgres_via(&proxy).await;
    let room_id = app.create_room("general").await;

    proxy.freeze_on(b"FROM events WHERE room_id");
    let started = Instant::now();
    let answered = tokio::time::timeout(
        Duration::from_secs(30),
        app.get(&format!("/api/rooms/{room_id}/messages?afterSeq=0")),
    )
    .await
    .expect("the read is given up, not left waiting");
    assert_eq!(answered.status(), 503);
    assert!(proxy.is_frozen(), "the trap went off");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "given up after {:?}",
        started.elapsed()
    );

    proxy.thaw();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = app
            .get(&format!("/api/rooms/{room_id}/messages?afterSeq=0"))
            .await
            .status();
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reads never came back: {status}"
        );
    }
}
