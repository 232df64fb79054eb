//! Room rules over STOMP (identity mode): a private room's SUBSCRIBE is refused as an unknown
//! room's to outsiders, a banned name's as `BANNED`; a kick ends every subscription of the
//! room with a `MESSAGE` without `seq` carrying `REMOVED`.

use reqwest::Method;
use serde_json::{Value, json};

use super::{QUIET, topic};
use crate::helpers::{TestApp, spawn_app_with};
use crate::suite::identity::{create_visible_as, identity_mode, token_for};
use crate::suite::stomp_client::{Next, StompClient, open};

/// A STOMP connection signed in as `name` by its upgrade's token.
async fn signed(app: &TestApp, name: &str) -> StompClient {
    let bearer = format!("Bearer {}", token_for(name));
    let headers = [("authorization", bearer.as_str())];
    let mut client = open(app.port, "/ws/stomp", "v12.stomp", &headers).await;
    client
        .send_frame("CONNECT", &[("accept-version", "1.2")], "")
        .await;
    client.expect("CONNECTED").await;
    client
}

async fn as_alice(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> u16 {
    let request = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token_for("alice"));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_follow_the_rooms_rules_and_a_kick_ends_every_subscription() {
    let app = spawn_app_with(identity_mode).await;
    let room_id = create_visible_as(&app, &token_for("alice"), "private").await;
    let unknown = uuid::Uuid::new_v4().to_string();

    let mut answers = Vec::new();
    for id in [&room_id, &unknown] {
        let mut outsider = signed(&app, "bob").await;
        outsider.ask_to_subscribe("r", &topic(id), None).await;
        let error = outsider.expect("ERROR").await;
        answers.push((
            error.header("message").map(str::to_owned),
            error.body.replace(id.as_str(), "ID"),
        ));
        assert!(outsider.expect_close().await.is_some());
    }
    assert_eq!(answers[0], answers[1], "as a room that never was");
    assert_eq!(answers[0].0.as_deref(), Some("ROOM_NOT_FOUND"));

    let roles = format!("/api/rooms/{room_id}/roles/bob");
    let member = Some(json!({"role": "member"}));
    assert_eq!(as_alice(&app, Method::PUT, &roles, member).await, 200);
    let mut bob = signed(&app, "bob").await;
    bob.subscribe("a", &topic(&room_id)).await;
    bob.subscribe("b", &format!("/sub/chat/room/{room_id}"))
        .await;
    bob.chat(json!({"type": "ENTER", "roomId": room_id})).await;
    for _ in 0..2 {
        assert_eq!(bob.next_event().await["type"], "ENTER");
    }

    let kick = format!("/api/rooms/{room_id}/members/bob");
    assert_eq!(as_alice(&app, Method::DELETE, &kick, None).await, 204);
    for _ in 0..2 {
        let event = bob.next_event().await;
        assert_eq!(
            (&event["type"], &event["action"]),
            (&json!("MODERATION"), &json!("kick"))
        );
    }
    let mut ended = Vec::new();
    for _ in 0..2 {
        let removed = bob.expect("MESSAGE").await;
        assert_eq!(removed.header("seq"), None, "no event: no seq");
        assert_eq!(
            removed.json(),
            json!({"type": "REMOVED", "roomId": room_id, "reason": "kicked"})
        );
        ended.push(removed.header("subscription").unwrap().to_owned());
    }
    ended.sort();
    assert_eq!(ended, ["a", "b"]);
    let mut alice = signed(&app, "alice").await;
    alice.subscribe("a", &topic(&room_id)).await;
    alice
        .chat(json!({"type": "ENTER", "roomId": room_id}))
        .await;
    alice
        .talk_and_await(&room_id, "alice", "after the kick", 1)
        .await;
    if let Some(Next::Frame(frame)) = bob.try_next(QUIET).await {
        panic!("an ended subscription got {frame:?}");
    }

    let ban = format!("/api/rooms/{room_id}/bans/bob");
    assert_eq!(as_alice(&app, Method::PUT, &ban, None).await, 200);
    let mut banned = signed(&app, "bob").await;
    banned.ask_to_subscribe("r", &topic(&room_id), None).await;
    let error = banned.expect("ERROR").await;
    assert_eq!(error.header("message"), Some("BANNED"));
    assert!(banned.expect_close().await.is_some());
}
