//! Retention and unread counts (PROTOCOL.md, "Messages that change"): a room's limits set with
//! PATCH, or the server's default, erase its oldest events within the check interval (never the
//! newest); the Room and history say `firstSeq`; a resume below it gets `TRUNCATED` first.

use serde_json::{Value, json};

use super::identity::{admin_token, connect_as, create_room_as, get_as, identity_mode, token_for};
use super::stomp_client::StompClient;
use crate::helpers::{TestApp, spawn_app_with};

/// Retention looks for work every 50 ms.
fn fast_checks(settings: &mut chat::config::Settings) {
    settings.retention_check_ms = 50;
}

async fn patch(app: &TestApp, room_id: &str, body: Value) -> reqwest::Response {
    patch_as(app, room_id, body, None).await
}

/// A PATCH of the room, with this bearer token when given.
async fn patch_as(
    app: &TestApp,
    room_id: &str,
    body: Value,
    token: Option<&str>,
) -> reqwest::Response {
    let request = app.http.patch(app.url(&format!("/api/rooms/{room_id}")));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.json(&body).send().await.expect("PATCH")
}

/// Waits until the room's `firstSeq` is `first`, as the Room says.
async fn first_seq_becomes(app: &TestApp, room_id: &str, first: u64) {
    app.wait_for_room_field(room_id, "firstSeq", first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_keeps_all_until_its_retention_is_set_and_bad_limits_change_nothing() {
    let app = spawn_app_with(fast_checks).await;
    let room_id = app.create_room("general").await;
    let room = app.room(&room_id).await;
    assert_eq!(
        (room["firstSeq"].clone(), room["retention"].clone()),
        (json!(1), Value::Null)
    );

    for bad in [
        json!({"retention": {"maxEvents": 0}}),
        json!({"retention": {"maxEvents": -1}}),
        json!({"retention": {"maxEvents": "10"}}),
        json!({"retention": {"maxAgeSeconds": 0}}),
        json!({"retention": {"maxAgeSeconds": 3_155_760_001_u64}}),
        json!({"retention": {"maxAgeSeconds": 1.5}}),
        json!({"retention": {"maxAge": 60}}),
        json!({"retention": 7}),
        json!({"name": "renamed"}),
    ] {
        let response = patch(&app, &room_id, bad.clone()).await;
        assert_eq!(response.status(), 400, "{bad}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "INVALID_REQUEST", "{bad}");
    }
    assert_eq!(app.room(&room_id).await["retention"], Value::Null);

    let missing = uuid::Uuid::new_v4();
    let response = patch(&app, &missing.to_string(), json!({"retention": null})).await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        patch(&app, "nope", json!({"retention": null}))
            .await
            .status(),
        400
    );

    let set = json!({"retention": {"maxAgeSeconds": 86400, "maxEvents": 10000}});
    let response = patch(&app, &room_id, set.clone()).await;
    assert_eq!(response.status(), 200);
    let room: Value = response.json().await.unwrap();
    assert_eq!(room["retention"], set["retention"]);
    assert_eq!(app.room(&room_id).await["retention"], set["retention"]);

    let cleared: Value = patch(&app, &room_id, json!({"retention": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["retention"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_events_the_oldest_are_erased_and_history_starts_at_first_seq() {
    let app = spawn_app_with(fast_checks).await;
    let room_id = app.create_room("general").await;
    app.fill_room(&room_id, 2500).await;

    let response = patch(&app, &room_id, json!({"retention": {"maxEvents": 3}})).await;
    assert_eq!(response.status(), 200);

    first_seq_becomes(&app, &room_id, 2498).await;
    assert_eq!(app.stored_events(&room_id).await, 3, "erased from the rows");
    let page: Value = app
        .get(&format!("/api/rooms/{room_id}/messages?afterSeq=0"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["firstSeq"], 2498);
    let seqs: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["seq"])
        .collect();
    assert_eq!(seqs, [2498, 2499, 2500]);
    assert_eq!(
        app.room(&room_id).await["lastSeq"],
        2500,
        "seqs are never reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_age_events_are_erased_but_never_the_newest() {
    let app = spawn_app_with(fast_checks).await;
    let room_id = app.create_room("general").await;
    app.fill_room(&room_id, 5).await;

    patch(&app, &room_id, json!({"retention": {"maxAgeSeconds": 60}})).await;

    first_seq_becomes(&app, &room_id, 5).await;
    assert_eq!(app.stored_events(&room_id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_default_applies_to_rooms_with_no_retention_of_their_own() {
    let app = spawn_app_with(|settings| {
        fast_checks(settings);
        settings.retention_max_age = Some(3600);
    })
    .await;
    let (old, kept) = (app.create_room("old").await, app.create_room("kept").await);
    // Its own limits first: its events are stamped 1970, and the default would erase them
    // within 50 ms of their filling.
    let own = patch(&app, &kept, json!({"retention": {"maxEvents": 10}})).await;
    assert_eq!(own.status(), 200);
    app.fill_room(&old, 4).await;
    app.fill_room(&kept, 4).await;

    first_seq_becomes(&app, &old, 4).await;
    assert_eq!(
        app.room(&kept).await["firstSeq"],
        1,
        "its own limits keep all four"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_below_first_seq_is_told_truncated_then_gets_every_event_from_there() {
    let app = spawn_app_with(fast_checks).await;
    let room_id = app.create_room("general").await;
    app.fill_room(&room_id, 10).await;
    patch(&app, &room_id, json!({"retention": {"maxEvents": 4}})).await;
    first_seq_becomes(&app, &room_id, 7).await;
    // A wider limit keeps the room at firstSeq 7 from here: with 4 the ENTERs below would push
    // seq 7 out too, within 50 ms, while the sessions are still being told where it starts.
    let wider = patch(&app, &room_id, json!({"retention": {"maxEvents": 1000}})).await;
    assert_eq!(wider.status(), 200);

    let mut alice = app.connect().await;
    alice.enter_after(&room_id, "alice", 2).await;
    assert_eq!(
        alice.next_json().await,
        json!({"type": "TRUNCATED", "roomId": room_id, "firstSeq": 7})
    );
    for seq in 7..=10 {
        assert_eq!(alice.next_of_type("TALK").await["seq"], seq);
    }
    assert_eq!(alice.next_of_type("ENTER").await["seq"], 11);

    let mut bob = app.connect().await;
    bob.enter_after(&room_id, "bob", 6).await;
    assert_eq!(
        bob.next_of_type("TALK").await["seq"],
        7,
        "nothing it asked for is gone"
    );

    let mut carol = StompClient::connect(app.port).await;
    carol
        .send_frame(
            "SUBSCRIBE",
            &[
                ("id", "r"),
                ("destination", &format!("/topic/rooms/{room_id}")),
                ("last-seq", "0"),
            ],
            "",
        )
        .await;
    let truncated = carol.expect("MESSAGE").await;
    assert_eq!(truncated.header("seq"), None);
    assert_eq!(
        truncated.json(),
        json!({"type": "TRUNCATED", "roomId": room_id, "firstSeq": 7})
    );
    assert_eq!(carol.next_event().await["seq"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_identity_only_an_owner_or_admin_sets_retention_and_rooms_carry_unread_counts() {
    let app = spawn_app_with(identity_mode).await;
    let (alice_token, bob_token) = (token_for("alice"), token_for("bob"));
    let room_id = create_room_as(&app, &alice_token).await;
    let quiet = create_room_as(&app, &alice_token).await;
    let mut alice = connect_as(&app, &alice_token).await;
    let mut bob = connect_as(&app, &bob_token).await;
    alice.join(&room_id, "alice").await;
    bob.join(&room_id, "bob").await;
    alice.talk_and_await(&room_id, "alice", "mine", 1).await;
    alice
        .send_json(json!({"type": "READ", "roomId": room_id, "sender": "alice", "seq": 3}))
        .await;
    for text in ["one", "two", "three"] {
        bob.talk(&room_id, "bob", text).await;
    }
    // Stored after the READ (queued before it), so the marker is stored once this comes back.
    alice
        .talk_and_await(&room_id, "alice", "my own again", 1)
        .await;
    let one = loop {
        let event = bob.next_json().await;
        if event["type"] == "TALK" && event["message"] == "one" {
            break event;
        }
    };
    let delete =
        json!({"type": "DELETE", "roomId": room_id, "sender": "bob", "targetSeq": one["seq"]});
    bob.send_json(delete).await;
    while alice.next_json().await["type"] != "DELETE" {}

    let rooms: Value = get_as(&app, "/api/rooms", &alice_token)
        .await
        .json()
        .await
        .unwrap();
    let unread = |room: &str| {
        rooms["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["roomId"] == room)
            .unwrap()["unreadCount"]
            .clone()
    };
    assert_eq!(
        unread(&room_id),
        2,
        "bob's two TALKs not deleted after alice's marker"
    );
    assert_eq!(unread(&quiet), Value::Null, "no marker there: absent");
    let path = format!("/api/rooms/{room_id}");
    let one_room: Value = get_as(&app, &path, &alice_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one_room["unreadCount"], 2);

    let body = json!({"retention": {"maxEvents": 5}});
    let refused = patch_as(&app, &room_id, body.clone(), Some(&bob_token)).await;
    assert_eq!(refused.status(), 403, "bob holds no role in alice's room");
    let owner = patch_as(&app, &room_id, body.clone(), Some(&alice_token)).await;
    assert_eq!(owner.status(), 200, "alice created it: she owns it");
    let allowed = patch_as(&app, &room_id, body, Some(&admin_token())).await;
    assert_eq!(allowed.status(), 200);
}
