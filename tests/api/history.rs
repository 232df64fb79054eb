use crate::helpers::{TestApp, WsClient, assert_problem, spawn_app};

/// A room with alice's ENTER (seq 1) and TALKs "m2".."m{last}" (seqs 2..=last).
async fn room_with_events(app: &TestApp, last: u64) -> (String, WsClient) {
    let room_id = app.create_room("history").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    for seq in 2..=last {
        alice.talk(&room_id, "alice", &format!("m{seq}")).await;
        alice.next_of_type("TALK").await;
    }
    (room_id, alice)
}

fn seqs(items: &[serde_json::Value]) -> Vec<u64> {
    items
        .iter()
        .map(|event| event["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_without_bounds_is_the_latest_events_in_ascending_seq() {
    let app = spawn_app().await;
    let (room_id, _alice) = room_with_events(&app, 60).await;

    let default = app.history(&room_id, "").await;
    assert_eq!(seqs(&default), (11..=60).collect::<Vec<_>>());

    let latest = app.history(&room_id, "?limit=3").await;
    assert_eq!(seqs(&latest), vec![58, 59, 60]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_events_have_the_event_shape() {
    let app = spawn_app().await;
    let (room_id, _alice) = room_with_events(&app, 2).await;

    let items = app.history(&room_id, "").await;

    assert_eq!(items[0]["type"], "ENTER");
    assert_eq!(items[0]["message"], "alice entered the room.");
    assert_eq!(items[1]["type"], "TALK");
    assert_eq!(items[1]["message"], "m2");
    assert_eq!(items[1]["sender"], "alice");
    assert_eq!(items[1]["roomId"], room_id);
    assert!(uuid::Uuid::parse_str(items[1]["messageId"].as_str().unwrap()).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(items[1]["sentAt"].as_str().unwrap()).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_seq_and_before_seq_bound_the_page() {
    let app = spawn_app().await;
    let (room_id, _alice) = room_with_events(&app, 20).await;

    assert_eq!(
        seqs(&app.history(&room_id, "?afterSeq=5&limit=3").await),
        vec![6, 7, 8]
    );
    assert_eq!(
        seqs(&app.history(&room_id, "?beforeSeq=5").await),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        seqs(&app.history(&room_id, "?beforeSeq=10&limit=2").await),
        vec![8, 9]
    );
    assert_eq!(
        seqs(&app.history(&room_id, "?afterSeq=3&beforeSeq=7").await),
        vec![4, 5, 6]
    );
    assert!(app.history(&room_id, "?afterSeq=20").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_history_query_is_invalid_request() {
    let app = spawn_app().await;
    let room_id = app.create_room("history").await;
    for query in [
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=4294967296",
        "afterSeq=-1",
        "afterSeq=-9223372036854775808",
        "afterSeq=9223372036854775808",
        "beforeSeq=0",
        "beforeSeq=-5",
        "beforeSeq=18446744073709551616",
        "afterSeq=x",
        "limit=1.5",
    ] {
        let response = app
            .get(&format!("/api/rooms/{room_id}/messages?{query}"))
            .await;
        assert_problem(response, 400, "INVALID_REQUEST").await;
    }
    assert!(app.history(&room_id, "?limit=500").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_seqs_are_valid_bounds() {
    let app = spawn_app().await;
    let (room_id, _alice) = room_with_events(&app, 3).await;
    let max = i64::MAX;

    assert!(
        app.history(&room_id, &format!("?afterSeq={max}"))
            .await
            .is_empty()
    );
    assert_eq!(
        seqs(&app.history(&room_id, &format!("?beforeSeq={max}")).await),
        vec![1, 2, 3]
    );
    let both = format!("?afterSeq=0&beforeSeq={max}&limit=500");
    assert_eq!(seqs(&app.history(&room_id, &both).await), vec![1, 2, 3]);
}
