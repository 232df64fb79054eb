//! Storage failing under a running server: clear errors, no internals, nothing half-stored.

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use crate::helpers::{assert_problem, spawn_app};

async fn execute(url: &str, sql: &'static str) {
    let mut conn = SqliteConnection::connect(url)
        .await
        .expect("side connection");
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .expect("side statement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_answers_unavailable_leaks_nothing_and_loses_no_seq() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    execute(
        &app.database_url(),
        "ALTER TABLE events RENAME TO events_away",
    )
    .await;
    alice.talk_with_id(&room_id, "alice", "lost?", "c-1").await;
    let error = alice.next_error("UNAVAILABLE").await;
    assert_eq!(error["clientMsgId"], "c-1");
    let history = app.get(&format!("/api/rooms/{room_id}/messages")).await;
    let problem = assert_problem(history, 503, "UNAVAILABLE").await;
    let detail = problem["detail"].as_str().unwrap().to_lowercase();
    for internal in ["events", "sql", "table", "database"] {
        assert!(!detail.contains(internal), "leaked {internal:?}: {detail}");
    }

    execute(
        &app.database_url(),
        "ALTER TABLE events_away RENAME TO events",
    )
    .await;
    alice.talk(&room_id, "alice", "back").await;
    let event = bob.next_of_type("TALK").await;
    assert_eq!(
        event["message"], "back",
        "bob never saw the TALK that was not stored"
    );
    assert_eq!(event["seq"], 3, "the failed TALK took no seq");
    assert_eq!(app.history(&room_id, "").await.len(), 3);
}
