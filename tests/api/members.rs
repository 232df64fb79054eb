//! Who is here (PROTOCOL.md, "Members"): `GET /api/rooms/{roomId}/members`, one item per
//! sender, consistent with `memberCount`, paged, and exact once the ENTER and LEAVE events after
//! its `asOfSeq` are applied.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, assert_problem, spawn_app};

/// The room's members list, whole (one page of up to 1000).
pub async fn members(app: &TestApp, room_id: &str) -> Value {
    let response = app
        .get(&format!("/api/rooms/{room_id}/members?limit=1000"))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("members JSON")
}

/// A members list as sender -> sessions.
fn sessions_of(list: &Value) -> BTreeMap<String, u64> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let sender = item["sender"].as_str().unwrap().to_owned();
            (sender, item["sessions"].as_u64().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_item_per_sender_with_its_sessions_since_and_read_seq() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    let first_enter = alice.join(&room_id, "alice").await;
    let mut bob = app.connect().await;
    let bobs_enter = bob.join(&room_id, "bob").await;
    let mut alice_again = app.connect().await;
    let second_enter = alice_again.join(&room_id, "alice").await;

    let list = members(&app, &room_id).await;

    assert_eq!(
        list["items"],
        json!([
            {"sender": "alice", "sessions": 2, "since": first_enter["sentAt"], "readSeq": 0},
            {"sender": "bob", "sessions": 1, "since": bobs_enter["sentAt"], "readSeq": 0},
        ])
    );
    assert_eq!(list["asOfSeq"], 3);
    assert_eq!(list["nextCursor"], Value::Null);
    assert_eq!(
        app.room(&room_id).await["memberCount"],
        3,
        "the sum of sessions"
    );

    alice.leave(&room_id, "alice").await;
    app.wait_for_member_count(&room_id, 2).await;
    let list = members(&app, &room_id).await;
    assert_eq!(
        sessions_of(&list),
        BTreeMap::from([("alice".into(), 1), ("bob".into(), 1)])
    );
    assert_eq!(
        list["items"][1]["since"], second_enter["sentAt"],
        "since the first of the sessions still there entered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_since_then_sender_and_bad_parameters_are_refused() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut clients = Vec::new();
    for name in ["carol", "alice", "bob", "dave", "erin"] {
        let mut client = app.connect().await;
        client.join(&room_id, name).await;
        clients.push(client);
    }
    let whole = members(&app, &room_id).await;

    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let response = app
            .get(&format!(
                "/api/rooms/{room_id}/members?limit=2&cursor={cursor}"
            ))
            .await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), whole["items"]);
    let senders: Vec<&str> = whole["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["sender"].as_str().unwrap())
        .collect();
    assert_eq!(
        senders,
        ["carol", "alice", "bob", "dave", "erin"],
        "in order of entering"
    );

    for query in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=x",
        "limit=4294967296",
        "cursor=nope",
        "cursor=1-zz",
    ] {
        let response = app
            .get(&format!("/api/rooms/{room_id}/members?{query}"))
            .await;
        assert_problem(response, 400, "INVALID_REQUEST").await;
    }
    let response = app.get("/api/rooms/not-a-uuid/members").await;
    assert_problem(response, 400, "INVALID_REQUEST").await;
    let unknown = uuid::Uuid::new_v4();
    let response = app.get(&format!("/api/rooms/{unknown}/members")).await;
    assert_problem(response, 404, "ROOM_NOT_FOUND").await;
    let response = app
        .post_json(&format!("/api/rooms/{room_id}/members"), &json!({}))
        .await;
    assert_problem(response, 405, "METHOD_NOT_ALLOWED").await;

    assert_eq!(
        app.delete(&format!("/api/rooms/{room_id}")).await.status(),
        204
    );
    let response = app.get(&format!("/api/rooms/{room_id}/members")).await;
    assert_problem(response, 404, "ROOM_NOT_FOUND").await;
}

/// Applies the ENTER and LEAVE events after the list's `asOfSeq` to it.
fn apply(list: &Value, events: &[Value]) -> BTreeMap<String, u64> {
    let mut sessions = sessions_of(list);
    let as_of = list["asOfSeq"].as_u64().unwrap();
    for event in events.iter().filter(|e| e["seq"].as_u64().unwrap() > as_of) {
        let sender = event["sender"].as_str().unwrap().to_owned();
        match event["type"].as_str().unwrap() {
            "ENTER" => *sessions.entry(sender).or_default() += 1,
            "LEAVE" => {
                let count = sessions.get_mut(&sender).expect("a LEAVE of a member");
                *count -= 1;
                if *count == 0 {
                    sessions.remove(&sender);
                }
            }
            _ => {}
        }
    }
    sessions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_taken_during_enters_and_leaves_is_exact_once_later_events_are_applied() {
    let app = spawn_app().await;
    let room_id = app.create_room("busy").await;
    let churn = (0..4).map(|i| {
        let (port, room_id) = (app.port, room_id.clone());
        tokio::spawn(async move {
            let name = format!("user{}", i % 2);
            for _ in 0..10 {
                let mut client = crate::helpers::connect(port).await;
                client.join(&room_id, &name).await;
                client.leave(&room_id, &name).await;
                let mut stays = crate::helpers::connect(port).await;
                stays.join(&room_id, &name).await;
                drop(client);
                keep(stays);
            }
        })
    });
    let churn: Vec<_> = churn.collect();

    let mut lists = Vec::new();
    while !churn.iter().all(|task| task.is_finished()) {
        lists.push(members(&app, &room_id).await);
    }
    for task in churn {
        task.await.unwrap();
    }
    app.wait_for_member_count(&room_id, 40).await;
    let history = app.history(&room_id, "?afterSeq=0&limit=500").await;
    let last = app.room(&room_id).await["lastSeq"].as_u64().unwrap();
    assert_eq!(history.len() as u64, last, "the whole history");

    let now = sessions_of(&members(&app, &room_id).await);
    assert!(
        lists.len() > 3,
        "lists taken while the room changed: {}",
        lists.len()
    );
    for list in &lists {
        assert_eq!(
            apply(list, &history),
            now,
            "from asOfSeq {}",
            list["asOfSeq"]
        );
    }
    let total: u64 = now.values().sum();
    assert_eq!(app.room(&room_id).await["memberCount"], total);
}

/// Keeps a client connected until the test's runtime ends.
fn keep(client: WsClient) {
    tokio::spawn(async move {
        let _client = client;
        std::future::pending::<()>().await;
    });
}
