//! Publishing over REST (PROTOCOL.md, "Bots and integrations"): `POST .../messages` stores a
//! TALK as the WebSocket does, members see it like any TALK, a `clientMsgId` is deduplicated
//! across both doors, and every rule of a TALK applies, with identity the room's rules too.

use reqwest::Method;
use serde_json::{Value, json};

use super::identity::{
    admin_token, claims, connect_as, create_visible_as, get_as, identity_mode, mint, token_for,
};
use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};

async fn publish(
    app: &TestApp,
    room_id: &str,
    body: Value,
    token: Option<&str>,
) -> reqwest::Response {
    let request = app
        .http
        .post(app.url(&format!("/api/rooms/{room_id}/messages")))
        .json(&body);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.expect("a response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_talk_reaches_the_room_and_is_stored_once_whichever_door_sent_it_first() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;

    let body = json!({"sender": "deploy-bot", "message": "v2 is live", "clientMsgId": "d-1"});
    let response = publish(&app, &room_id, body.clone(), None).await;
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("location").is_some());
    let event: Value = response.json().await.unwrap();
    assert_eq!(
        (
            &event["type"],
            &event["sender"],
            &event["message"],
            &event["clientMsgId"]
        ),
        (
            &json!("TALK"),
            &json!("deploy-bot"),
            &json!("v2 is live"),
            &json!("d-1")
        )
    );
    let seen = alice.next_of_type("TALK").await;
    assert_eq!(
        seen, event,
        "members get exactly the event the publisher was answered"
    );

    let again = publish(&app, &room_id, body, None).await;
    assert_eq!(again.status(), 200);
    let first: Value = again.json().await.unwrap();
    assert_eq!(
        (&first["seq"], &first["duplicate"]),
        (&event["seq"], &json!(true))
    );

    alice
        .talk_with_id(&room_id, "alice", "from the socket", "w-1")
        .await;
    let talked = alice.next_of_type("TALK").await;
    let body = json!({"sender": "alice", "message": "from the socket", "clientMsgId": "w-1"});
    let resent = publish(&app, &room_id, body, None).await;
    assert_eq!(
        resent.status(),
        200,
        "a WebSocket TALK's id is used up for REST too"
    );
    let resent: Value = resent.json().await.unwrap();
    assert_eq!(
        (&resent["seq"], &resent["duplicate"]),
        (&talked["seq"], &json!(true))
    );

    let reply = json!({"sender": "bot", "message": "ack", "replyTo": event["seq"]});
    let reply: Value = publish(&app, &room_id, reply, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["replyTo"], event["seq"]);
    let talks: Vec<Value> = app
        .history(&room_id, "")
        .await
        .into_iter()
        .filter(|event| event["type"] == "TALK")
        .collect();
    assert_eq!(talks.len(), 3, "each stored once: {talks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_publish_is_refused_with_its_code_and_stores_nothing() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let ok = |extra: Value| {
        let mut body = json!({"sender": "bot", "message": "hi"});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let cases = [
        (
            ok(json!({"message": "x".repeat(4001)})),
            400,
            "MESSAGE_TOO_LONG",
        ),
        (ok(json!({"message": ""})), 400, "INVALID_REQUEST"),
        (ok(json!({"message": 7})), 400, "INVALID_REQUEST"),
        (json!({"sender": "bot"}), 400, "INVALID_REQUEST"),
        (json!({"message": "who?"}), 400, "INVALID_REQUEST"),
        (ok(json!({"sender": "  "})), 400, "INVALID_REQUEST"),
        (
            ok(json!({"sender": "s".repeat(65)})),
            400,
            "INVALID_REQUEST",
        ),
        (ok(json!({"clientMsgId": ""})), 400, "INVALID_REQUEST"),
        (
            ok(json!({"clientMsgId": "c".repeat(129)})),
            400,
            "INVALID_REQUEST",
        ),
        (ok(json!({"replyTo": 0})), 400, "INVALID_REQUEST"),
        (ok(json!({"replyTo": -1})), 400, "INVALID_REQUEST"),
        (ok(json!({"replyTo": "1"})), 400, "INVALID_REQUEST"),
        (
            ok(json!({"replyTo": 9_223_372_036_854_775_807_i64})),
            400,
            "TARGET_NOT_FOUND",
        ),
        (ok(json!({"replyTo": 1})), 400, "TARGET_NOT_FOUND"),
        (ok(json!({"seq": 1})), 400, "INVALID_REQUEST"),
    ];
    for (body, status, code) in cases {
        let response = publish(&app, &room_id, body.clone(), None).await;
        let problem = assert_problem(response, status, code).await;
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{body}");
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    let response = publish(
        &app,
        &unknown,
        json!({"sender": "bot", "message": "hi"}),
        None,
    )
    .await;
    assert_problem(response, 404, "ROOM_NOT_FOUND").await;
    let response = publish(
        &app,
        "not-a-uuid",
        json!({"sender": "bot", "message": "hi"}),
        None,
    )
    .await;
    assert_problem(response, 400, "INVALID_REQUEST").await;
    let text = app
        .http
        .post(app.url(&format!("/api/rooms/{room_id}/messages")))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_problem(text, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    assert!(
        app.history(&room_id, "").await.is_empty(),
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_identity_the_sender_is_the_identity_and_the_rooms_rules_apply() {
    let app = spawn_app_with(identity_mode).await;
    let (alice, bot) = (token_for("alice"), token_for("bot"));
    let room_id = create_visible_as(&app, &alice, "private").await;
    let hello = json!({"message": "hello"});

    let hidden = publish(&app, &room_id, hello.clone(), Some(&bot)).await;
    assert_problem(hidden, 404, "ROOM_NOT_FOUND").await;
    let call = |method: Method, path: String, body: Option<Value>| {
        let request = app.http.request(method, app.url(&path)).bearer_auth(&alice);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let role = format!("/api/rooms/{room_id}/roles/bot");
    assert_eq!(
        call(Method::PUT, role, Some(json!({"role": "member"}))).await,
        200
    );
    let mut member = connect_as(&app, &alice).await;
    member.join(&room_id, "alice").await;

    let stored = publish(&app, &room_id, hello.clone(), Some(&bot)).await;
    assert_eq!(stored.status(), 201);
    assert_eq!(
        member.next_of_type("TALK").await["sender"],
        "bot",
        "the identity's name"
    );
    let other = publish(
        &app,
        &room_id,
        json!({"sender": "alice", "message": "x"}),
        Some(&bot),
    )
    .await;
    assert_problem(other, 403, "SENDER_MISMATCH").await;

    let mute = format!("/api/rooms/{room_id}/mutes/bot");
    assert_eq!(call(Method::PUT, mute.clone(), None).await, 200);
    assert_problem(
        publish(&app, &room_id, hello.clone(), Some(&bot)).await,
        403,
        "MUTED",
    )
    .await;
    assert_eq!(call(Method::DELETE, mute, None).await, 204);
    let ban = format!("/api/rooms/{room_id}/bans/bot");
    assert_eq!(call(Method::PUT, ban, None).await, 200);
    assert_problem(
        publish(&app, &room_id, hello.clone(), Some(&bot)).await,
        403,
        "BANNED",
    )
    .await;
    let admin = publish(&app, &room_id, hello, Some(&admin_token())).await;
    assert_eq!(admin.status(), 201, "an admin is above the room's rules");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bots_events_say_so_on_every_door_and_in_history() {
    let app = spawn_app_with(identity_mode).await;
    let alice = token_for("alice");
    let room_id = create_visible_as(&app, &alice, "public").await;
    let mut bot_claims = claims("deploy-bot");
    bot_claims["roles"] = json!(["bot"]);
    let bot = mint(&bot_claims);
    let mut member = connect_as(&app, &alice).await;
    member.join(&room_id, "alice").await;

    let published = publish(&app, &room_id, json!({"message": "deployed"}), Some(&bot)).await;
    let published: Value = published.json().await.unwrap();
    assert_eq!(published["bot"], true);
    let mut session = connect_as(&app, &bot).await;
    session.join(&room_id, "deploy-bot").await;
    session
        .talk(&room_id, "deploy-bot", "over the socket")
        .await;
    drop(session);
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = member.next_json().await;
        seen.push((event["type"].clone(), event["bot"].clone()));
    }
    let yes = json!(true);
    assert_eq!(
        seen,
        [
            (json!("TALK"), yes.clone()),
            (json!("ENTER"), yes.clone()),
            (json!("TALK"), yes.clone()),
            (json!("LEAVE"), yes.clone()),
        ],
        "a LEAVE on hanging up too"
    );
    member.talk(&room_id, "alice", "thanks").await;
    let mine = member.next_of_type("TALK").await;
    assert!(mine.get("bot").is_none(), "absent for people: {mine}");
    let path = format!("/api/rooms/{room_id}/messages");
    let history: Value = get_as(&app, &path, &alice).await.json().await.unwrap();
    let items = history["items"].as_array().unwrap();
    let bots = items.iter().filter(|event| event["bot"] == true).count();
    assert_eq!(bots, 4, "storage keeps it");
}
