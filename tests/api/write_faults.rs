//! The write path under the faults real networks have (PROTOCOL.md: an event is broadcast only
//! after it is stored; nothing is lost or stored twice): a connection that dies as it carries a
//! COMMIT, one that stops answering mid-transaction. PostgreSQL through a proxy the test breaks.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use crate::faults::{Proxy, postgres_server, through};
use crate::helpers::{Data, TestApp, spawn_app_on};
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
