use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_room_returns_201_with_its_location_and_the_room() {
    let app = spawn_app().await;

    let response = app
        .post_json("/api/rooms", &json!({"name": "  general  "}))
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let room: Value = response.json().await.unwrap();
    let room_id = room["roomId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(room_id).is_ok());
    assert_eq!(location, format!("/api/rooms/{room_id}"));
    assert_eq!(room["name"], "general");
    assert_eq!(room["memberCount"], 0);
    assert_eq!(room["lastSeq"], 0);
    let created_at = room["createdAt"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
    assert!(created_at.ends_with('Z'), "{created_at}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_room_can_be_read_back() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;

    let room = app.room(&room_id).await;

    assert_eq!(room["roomId"], room_id);
    assert_eq!(room["name"], "general");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_name_must_be_1_to_100_characters_after_trimming() {
    let app = spawn_app().await;
    for name in [json!(""), json!("   "), json!("x".repeat(101))] {
        let response = app.post_json("/api/rooms", &json!({ "name": name })).await;
        assert_problem(response, 400, "INVALID_REQUEST").await;
    }
    let ok = app
        .post_json("/api/rooms", &json!({"name": "é".repeat(100)}))
        .await;
    assert_eq!(ok.status(), 201);
    let page: Value = app.get("/api/rooms").await.json().await.unwrap();
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "refused rooms were not created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_mistyped_name_is_invalid_request() {
    let app = spawn_app().await;
    for body in [json!({}), json!({"name": 7}), json!([]), json!("general")] {
        let response = app.post_json("/api/rooms", &body).await;
        assert_problem(response, 400, "INVALID_REQUEST").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_invalid_request() {
    let app = spawn_app().await;
    let response = app
        .post_raw("/api/rooms", "application/json", "{\"name\": ")
        .await;
    assert_problem(response, 400, "INVALID_REQUEST").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_is_unsupported_media_type() {
    let app = spawn_app().await;
    let response = app
        .post_raw("/api/rooms", "text/plain", "{\"name\": \"general\"}")
        .await;
    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_payload_too_large() {
    let app = spawn_app().await;
    let response = app
        .post_json("/api/rooms", &json!({"name": "x".repeat(100_000)}))
        .await;
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_listed_newest_first_in_cursor_pages() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(app.create_room(&format!("room {i}")).await);
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut path = "/api/rooms?limit=2".to_owned();
    loop {
        let page: Value = app.get(&path).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|room| room["roomId"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/rooms?limit=2&cursor={cursor}"),
            None => break,
        }
    }

    assert_eq!(seen, created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_defaults_to_100_rooms_and_a_null_cursor_when_complete() {
    let app = spawn_app().await;
    app.create_room("only").await;

    let page: Value = app.get("/api/rooms").await.json().await.unwrap();

    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["nextCursor"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_list_limit_or_cursor_is_invalid_request() {
    let app = spawn_app().await;
    for query in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=abc",
        "cursor=zzz",
        "cursor=-5",
    ] {
        let response = app.get(&format!("/api/rooms?{query}")).await;
        assert_problem(response, 400, "INVALID_REQUEST").await;
    }
    assert_eq!(app.get("/api/rooms?limit=1000").await.status(), 200);
    assert_eq!(
        app.get("/api/rooms?cursor=").await.status(),
        200,
        "empty means first page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_id_that_is_not_a_uuid_is_invalid_request() {
    let app = spawn_app().await;
    for path in ["/api/rooms/nope", "/api/rooms/nope/messages"] {
        assert_problem(app.get(path).await, 400, "INVALID_REQUEST").await;
    }
    assert_problem(app.delete("/api/rooms/nope").await, 400, "INVALID_REQUEST").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_room_is_room_not_found() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::new_v4();
    let body = assert_problem(
        app.get(&format!("/api/rooms/{missing}")).await,
        404,
        "ROOM_NOT_FOUND",
    )
    .await;
    assert_eq!(body["title"], "Not Found");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&missing.to_string())
    );
    let history = app.get(&format!("/api/rooms/{missing}/messages")).await;
    assert_problem(history, 404, "ROOM_NOT_FOUND").await;
    assert_problem(
        app.delete(&format!("/api/rooms/{missing}")).await,
        404,
        "ROOM_NOT_FOUND",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_room_returns_204_and_removes_it_and_its_history() {
    let app = spawn_app().await;
    let room_id = app.create_room("doomed").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;

    let response = app.delete(&format!("/api/rooms/{room_id}")).await;

    assert_eq!(response.status(), 204);
    assert_problem(
        app.get(&format!("/api/rooms/{room_id}")).await,
        404,
        "ROOM_NOT_FOUND",
    )
    .await;
    let history = app.get(&format!("/api/rooms/{room_id}/messages")).await;
    assert_problem(history, 404, "ROOM_NOT_FOUND").await;
    let page: Value = app.get("/api/rooms").await.json().await.unwrap();
    assert!(page["items"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_count_and_last_seq_follow_the_room() {
    let app = spawn_app().await;
    let (room_id, mut alice, bob) = app.alice_and_bob_in_a_room().await;
    alice.talk(&room_id, "alice", "hi").await;
    alice.next_of_type("TALK").await;

    let room = app.room(&room_id).await;
    assert_eq!(room["memberCount"], 2);
    assert_eq!(room["lastSeq"], 3);
    let listed: Value = app.get("/api/rooms").await.json().await.unwrap();
    assert_eq!(listed["items"][0]["memberCount"], 2);

    bob.close().await;
    app.wait_for_member_count(&room_id, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/nothing").await, 404, "NOT_FOUND").await;
    let put = app.http.put(app.url("/api/rooms")).send().await.unwrap();
    assert_eq!(put.headers()["allow"], "GET, POST");
    assert_problem(put, 405, "METHOD_NOT_ALLOWED").await;
    let post = app.http.post(app.url("/metrics")).send().await.unwrap();
    assert_eq!(post.headers()["allow"], "GET");
    assert_problem(post, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_created_at_the_same_moment_are_listed_with_created_at_never_increasing() {
    let app = spawn_app().await;
    let lock = app.hold_write_lock().await;
    let mut creating = Vec::new();
    for i in 0..30 {
        let (http, url) = (app.http.clone(), app.url("/api/rooms"));
        creating.push(tokio::spawn(async move {
            let body = json!({ "name": format!("room {i}") });
            http.post(url).json(&body).send().await.unwrap().status()
        }));
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    app.wait_for_metric_at_least("chat_writer_queued_total{command=\"create_room\"}", 30.0)
        .await;
    lock.release().await;
    for created in creating {
        assert_eq!(created.await.unwrap(), 201);
    }

    let page: Value = app.get("/api/rooms?limit=1000").await.json().await.unwrap();
    let created_at: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["createdAt"].as_str().unwrap())
        .collect();
    assert_eq!(created_at.len(), 30);
    assert!(
        created_at.windows(2).all(|pair| pair[0] >= pair[1]),
        "createdAt increases somewhere down the list: {created_at:?}"
    );
}
