//! Private rooms, room roles and moderation (PROTOCOL.md, "Private rooms, room roles and
//! moderation"), with several identities: the owner who created the room, a moderator, a
//! member, an outsider and an `admin`. A private room is missing for outsiders on every path;
//! roles follow the rules of who may grant what; kicks, bans and mutes reach open sessions at
//! once; every action is a MODERATION event in the room's history.

use reqwest::Method;
use serde_json::{Value, json};

use super::identity::{admin_token, connect_as, get_as, identity_mode, token_for};
use crate::helpers::{TestApp, WsClient, assert_problem, spawn_app, spawn_app_with};

/// A request with a bearer token and, when given, a JSON body.
async fn call_as(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = app.http.request(method, app.url(path)).bearer_auth(token);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("a response")
}

/// Creates a room as `token`'s identity, with this visibility; returns the Room.
async fn create_as(app: &TestApp, token: &str, visibility: &str) -> Value {
    let body = json!({"name": "team", "visibility": visibility});
    let response = call_as(app, Method::POST, "/api/rooms", token, Some(body)).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn grant(app: &TestApp, room_id: &str, name: &str, role: &str, token: &str) -> u16 {
    let path = format!("/api/rooms/{room_id}/roles/{name}");
    let body = Some(json!({"role": role}));
    call_as(app, Method::PUT, &path, token, body)
        .await
        .status()
        .as_u16()
}

async fn revoke(app: &TestApp, room_id: &str, name: &str, token: &str) -> u16 {
    let path = format!("/api/rooms/{room_id}/roles/{name}");
    call_as(app, Method::DELETE, &path, token, None)
        .await
        .status()
        .as_u16()
}

/// `PUT .../{what}/{name}` (bans, mutes) with an optional body.
async fn sanction(
    app: &TestApp,
    room_id: &str,
    what: &str,
    name: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let path = format!("/api/rooms/{room_id}/{what}/{name}");
    call_as(app, Method::PUT, &path, token, body).await
}

async fn lift(app: &TestApp, room_id: &str, what: &str, name: &str, token: &str) -> u16 {
    let path = format!("/api/rooms/{room_id}/{what}/{name}");
    call_as(app, Method::DELETE, &path, token, None)
        .await
        .status()
        .as_u16()
}

async fn kick(app: &TestApp, room_id: &str, name: &str, token: &str) -> u16 {
    lift(app, room_id, "members", name, token).await
}

/// The names of the items of a list answered to `token`.
async fn names(app: &TestApp, path: &str, token: &str, field: &str) -> Vec<String> {
    let response = get_as(app, path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    let list: Value = response.json().await.unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap().to_owned())
        .collect()
}

/// A signed-in WebSocket that has entered the room as its identity.
async fn member(app: &TestApp, room_id: &str, name: &str) -> WsClient {
    let mut client = connect_as(app, &token_for(name)).await;
    client.join(room_id, name).await;
    client
}

/// Reads until a frame of this type arrives, returning it.
async fn until_type(client: &mut WsClient, kind: &str) -> Value {
    loop {
        let frame = client.next_json().await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// The MODERATION events of a room's history, as the admin reads it.
async fn audit(app: &TestApp, room_id: &str) -> Vec<Value> {
    let path = format!("/api/rooms/{room_id}/messages?limit=500");
    let page: Value = get_as(app, &path, &admin_token())
        .await
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "MODERATION")
        .cloned()
        .collect()
}

/// Waits until the room's `memberCount` is `count`, as an admin reads it.
async fn members_become(app: &TestApp, room_id: &str, count: u64) {
    let path = format!("/api/rooms/{room_id}");
    let token = admin_token();
    app.wait_for_json(&path, Some(&token), |room| room["memberCount"] == count)
        .await;
}

/// Waits until a room's list of bans or mutes (`what`) holds nobody: what was there ended.
async fn none_in_force(app: &TestApp, room_id: &str, what: &str) {
    let path = format!("/api/rooms/{room_id}/{what}");
    let token = admin_token();
    app.wait_for_json(&path, Some(&token), |list| list["items"] == json!([]))
        .await;
}

fn in_a_second() -> String {
    let until = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_is_missing_for_outsiders_on_every_path_and_there_for_its_roles() {
    let app = spawn_app_with(identity_mode).await;
    let (alice, bob) = (token_for("alice"), token_for("bob"));
    let room = create_as(&app, &alice, "private").await;
    assert_eq!(
        (&room["visibility"], &room["role"]),
        (&json!("private"), &json!("owner"))
    );
    let room_id = room["roomId"].as_str().unwrap().to_owned();
    let public = create_as(&app, &alice, "public").await;
    assert_eq!(public["visibility"], "public");
    let never = uuid::Uuid::new_v4().to_string();

    let listed = names(&app, "/api/rooms", &bob, "roomId").await;
    assert!(!listed.contains(&room_id), "left out of bob's list");
    assert!(listed.contains(&public["roomId"].as_str().unwrap().to_owned()));
    let paged = names(&app, "/api/rooms?limit=1", &bob, "roomId").await;
    assert_eq!(
        paged,
        [public["roomId"].as_str().unwrap()],
        "cursors skip it too"
    );
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({"retention": null}))),
        (Method::DELETE, "", None),
        (Method::GET, "/messages", None),
        (Method::GET, "/members", None),
        (Method::GET, "/roles", None),
        (Method::PUT, "/roles/bob", Some(json!({"role": "member"}))),
        (Method::DELETE, "/roles/alice", None),
        (Method::DELETE, "/members/alice", None),
        (Method::GET, "/bans", None),
        (Method::PUT, "/bans/carol", None),
        (Method::GET, "/mutes", None),
        (Method::PUT, "/mutes/carol", None),
    ] {
        let mut answers = Vec::new();
        for id in [&room_id, &never] {
            let path = format!("/api/rooms/{id}{suffix}");
            let response = call_as(&app, method.clone(), &path, &bob, body.clone()).await;
            let problem = assert_problem(response, 404, "ROOM_NOT_FOUND").await;
            let detail = problem["detail"]
                .as_str()
                .unwrap()
                .replace(id.as_str(), "ID");
            answers.push(detail);
        }
        assert_eq!(
            answers[0], answers[1],
            "{method} {suffix}: as a room that never was"
        );
    }

    let mut outsider = connect_as(&app, &bob).await;
    for id in [&room_id, &never] {
        outsider.enter(id, "bob").await;
        let refused = outsider.next_error("ROOM_NOT_FOUND").await;
        assert_eq!(refused["roomId"], id.as_str());
        for frame in [
            json!({"type": "TALK", "roomId": id, "sender": "bob", "message": "hi"}),
            json!({"type": "TYPING", "roomId": id, "sender": "bob"}),
            json!({"type": "READ", "roomId": id, "sender": "bob", "seq": 1}),
            json!({"type": "LEAVE", "roomId": id, "sender": "bob"}),
        ] {
            outsider.send_json(frame).await;
            outsider.next_error("NOT_IN_ROOM").await;
        }
    }

    let admin_view = get_as(&app, &format!("/api/rooms/{room_id}"), &admin_token()).await;
    assert_eq!(admin_view.status(), 200, "an admin sees every room");
    let mut admin = connect_as(&app, &admin_token()).await;
    admin.join(&room_id, "root").await;

    assert_eq!(grant(&app, &room_id, "bob", "member", &alice).await, 200);
    let seen: Value = get_as(&app, &format!("/api/rooms/{room_id}"), &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&seen["visibility"], &seen["role"]),
        (&json!("private"), &json!("member"))
    );
    assert!(
        names(&app, "/api/rooms", &bob, "roomId")
            .await
            .contains(&room_id)
    );
    outsider.join(&room_id, "bob").await;
    outsider
        .talk_and_await(&room_id, "bob", "in at last", 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_identity_rooms_stay_public_and_moderation_is_refused() {
    let app = spawn_app().await;
    let response = app
        .post_json("/api/rooms", &json!({"name": "x", "visibility": "private"}))
        .await;
    assert_problem(response, 400, "INVALID_REQUEST").await;
    let response = app
        .post_json("/api/rooms", &json!({"name": "x", "visibility": "secret"}))
        .await;
    assert_problem(response, 400, "INVALID_REQUEST").await;
    let room_id = app.create_room("open").await;
    let room = app.room(&room_id).await;
    assert_eq!(
        (&room["visibility"], &room["role"]),
        (&json!("public"), &Value::Null)
    );
    let put = app
        .http
        .put(app.url(&format!("/api/rooms/{room_id}/bans/bob")))
        .send()
        .await
        .unwrap();
    assert_problem(put, 403, "FORBIDDEN").await;
    let roles: Value = app
        .get(&format!("/api/rooms/{room_id}/roles"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(roles["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_follow_who_may_grant_what_and_a_room_keeps_an_owner() {
    let app = spawn_app_with(identity_mode).await;
    let alice = token_for("alice");
    let room_id = create_as(&app, &alice, "public").await["roomId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (bob, carol) = (token_for("bob"), token_for("carol"));

    let response = call_as(
        &app,
        Method::PUT,
        &format!("/api/rooms/{room_id}/roles/bob"),
        &alice,
        Some(json!({"role": "moderator"})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let granted: Value = response.json().await.unwrap();
    assert_eq!(
        (&granted["name"], &granted["role"], &granted["grantedBy"]),
        (&json!("bob"), &json!("moderator"), &json!("alice"))
    );
    assert!(granted["grantedAt"].as_str().is_some());
    assert_eq!(
        grant(&app, &room_id, "carol", "member", &bob).await,
        200,
        "a moderator grants member"
    );
    assert_eq!(grant(&app, &room_id, "dave", "moderator", &bob).await, 403);
    assert_eq!(grant(&app, &room_id, "carol", "owner", &bob).await, 403);
    assert_eq!(
        revoke(&app, &room_id, "alice", &bob).await,
        403,
        "nor revokes an owner"
    );
    assert_eq!(
        grant(&app, &room_id, "dave", "member", &carol).await,
        403,
        "members grant nothing"
    );
    assert_eq!(
        grant(&app, &room_id, "dave", "member", &token_for("eve")).await,
        403
    );
    assert_eq!(
        revoke(&app, &room_id, "carol", &bob).await,
        204,
        "a moderator revokes member"
    );
    assert_eq!(
        revoke(&app, &room_id, "carol", &bob).await,
        204,
        "nothing left to revoke"
    );

    let last = call_as(
        &app,
        Method::DELETE,
        &format!("/api/rooms/{room_id}/roles/alice"),
        &alice,
        None,
    )
    .await;
    assert_problem(last, 409, "LAST_OWNER").await;
    assert_eq!(
        grant(&app, &room_id, "alice", "member", &admin_token()).await,
        409,
        "not even an admin"
    );
    assert_eq!(grant(&app, &room_id, "bob", "owner", &alice).await, 200);
    assert_eq!(
        revoke(&app, &room_id, "alice", &alice).await,
        204,
        "another owner remains"
    );
    assert_eq!(
        grant(&app, &room_id, "zed", "moderator", &admin_token()).await,
        200
    );
    for bad in [
        json!({"role": "admin"}),
        json!({"role": 1}),
        json!({}),
        json!({"role": "member", "x": 1}),
    ] {
        let path = format!("/api/rooms/{room_id}/roles/zed");
        let response = call_as(&app, Method::PUT, &path, &bob, Some(bad.clone())).await;
        assert_problem(response, 400, "INVALID_REQUEST").await;
    }
    for name in ["%20", &"n".repeat(65)] {
        let path = format!("/api/rooms/{room_id}/roles/{name}");
        let response = call_as(
            &app,
            Method::PUT,
            &path,
            &bob,
            Some(json!({"role": "member"})),
        )
        .await;
        assert_problem(response, 400, "INVALID_REQUEST").await;
    }

    let roles = names(&app, &format!("/api/rooms/{room_id}/roles"), &carol, "name").await;
    assert_eq!(roles, ["bob", "zed"], "owners first, then by name");
    let audit = audit(&app, &room_id).await;
    let actions: Vec<(String, String, String)> = audit
        .iter()
        .map(|event| {
            (
                event["action"].as_str().unwrap().to_owned(),
                event["target"].as_str().unwrap().to_owned(),
                event["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("grant", "bob", "alice"),
        ("grant", "carol", "bob"),
        ("revoke", "carol", "bob"),
        ("grant", "bob", "alice"),
        ("revoke", "alice", "alice"),
        ("grant", "zed", "root"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, t, b)| (a.to_string(), t.to_string(), b.to_string()))
        .collect();
    assert_eq!(
        actions, expected,
        "refused and empty actions stored nothing"
    );
    assert_eq!(
        audit[2]["role"], "member",
        "a revoke names the role it took"
    );
    assert_eq!(audit[0]["sender"], "alice");
    let seqs: Vec<u64> = audit.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5, 6],
        "each action takes the room's next seq"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_silences_talk_edit_react_and_typing_until_lifted_or_over() {
    let app = spawn_app_with(identity_mode).await;
    let alice = token_for("alice");
    let room_id = create_as(&app, &alice, "public").await["roomId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut owner = member(&app, &room_id, "alice").await;
    let mut bob = member(&app, &room_id, "bob").await;
    until_type(&mut owner, "ENTER").await;
    bob.talk_and_await(&room_id, "bob", "before", 1).await;
    let mine = bob.history_seq(&app, &room_id, "before").await;

    let response = sanction(&app, &room_id, "mutes", "bob", &alice, None).await;
    assert_eq!(response.status(), 200);
    let muted: Value = response.json().await.unwrap();
    assert_eq!(
        (&muted["name"], &muted["until"], &muted["by"]),
        (&json!("bob"), &Value::Null, &json!("alice"))
    );
    let event = until_type(&mut bob, "MODERATION").await;
    assert_eq!(
        (&event["action"], &event["target"]),
        (&json!("mute"), &json!("bob"))
    );
    for frame in [
        json!({"type": "TALK", "roomId": room_id, "sender": "bob", "message": "hi"}),
        json!({"type": "TYPING", "roomId": room_id, "sender": "bob"}),
        json!({"type": "EDIT", "roomId": room_id, "sender": "bob", "targetSeq": mine, "message": "x"}),
        json!({"type": "REACT", "roomId": room_id, "sender": "bob", "targetSeq": mine, "emoji": "👍"}),
    ] {
        bob.send_json(frame).await;
        let refused = bob.next_error("MUTED").await;
        assert_eq!(refused["roomId"], room_id.as_str());
    }
    bob.send_json(json!({"type": "READ", "roomId": room_id, "sender": "bob", "seq": mine}))
        .await;
    bob.send_json(json!({"type": "DELETE", "roomId": room_id, "sender": "bob", "targetSeq": mine}))
        .await;
    assert_eq!(
        until_type(&mut bob, "DELETE").await["targetSeq"],
        mine,
        "taking back is no talk"
    );
    assert_eq!(
        names(&app, &format!("/api/rooms/{room_id}/mutes"), &alice, "name").await,
        ["bob"]
    );

    assert_eq!(lift(&app, &room_id, "mutes", "bob", &alice).await, 204);
    assert_eq!(until_type(&mut bob, "MODERATION").await["action"], "unmute");
    bob.talk_and_await(&room_id, "bob", "free again", 1).await;

    let until = in_a_second();
    let response = sanction(
        &app,
        &room_id,
        "mutes",
        "bob",
        &alice,
        Some(json!({"until": until})),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        until_type(&mut bob, "MODERATION").await["until"],
        until.as_str()
    );
    bob.talk(&room_id, "bob", "too soon").await;
    bob.next_error("MUTED").await;
    // The mute ends by itself: out of the list, and the session lets the next TALK through.
    none_in_force(&app, &room_id, "mutes").await;
    bob.talk(&room_id, "bob", "over").await;
    assert_eq!(bob.next_of_type("TALK").await["message"], "over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_and_a_ban_remove_the_sessions_and_a_ban_keeps_them_out_until_over() {
    let app = spawn_app_with(identity_mode).await;
    let alice = token_for("alice");
    let room_id = create_as(&app, &alice, "public").await["roomId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut owner = member(&app, &room_id, "alice").await;
    let mut bob = member(&app, &room_id, "bob").await;
    let mut bob_again = member(&app, &room_id, "bob").await;
    for _ in 0..2 {
        until_type(&mut owner, "ENTER").await;
    }
    members_become(&app, &room_id, 3).await;

    assert_eq!(kick(&app, &room_id, "bob", &alice).await, 204);
    for session in [&mut bob, &mut bob_again] {
        let event = until_type(session, "MODERATION").await;
        assert_eq!(
            (&event["action"], &event["target"], &event["by"]),
            (&json!("kick"), &json!("bob"), &json!("alice"))
        );
        assert_eq!(
            session.next_json().await,
            json!({"type": "REMOVED", "roomId": room_id, "reason": "kicked"})
        );
    }
    for _ in 0..2 {
        let leave = until_type(&mut owner, "LEAVE").await;
        assert_eq!(leave["sender"], "bob");
    }
    members_become(&app, &room_id, 1).await;
    bob.talk(&room_id, "bob", "still here?").await;
    bob.next_error("NOT_IN_ROOM").await;
    bob.join(&room_id, "bob").await;

    let until = in_a_second();
    let body = json!({"until": until, "reason": "spam"});
    let response = sanction(&app, &room_id, "bans", "bob", &alice, Some(body)).await;
    assert_eq!(response.status(), 200);
    let ban: Value = response.json().await.unwrap();
    assert_eq!(
        (&ban["reason"], &ban["until"]),
        (&json!("spam"), &json!(until))
    );
    let event = until_type(&mut bob, "MODERATION").await;
    assert_eq!(
        (&event["action"], &event["reason"]),
        (&json!("ban"), &json!("spam"))
    );
    assert_eq!(bob.next_json().await["reason"], "banned");
    assert_eq!(
        names(
            &app,
            &format!("/api/rooms/{room_id}/bans"),
            &token_for("carol"),
            "name"
        )
        .await,
        ["bob"]
    );
    bob_again.enter(&room_id, "bob").await;
    let refused = bob_again.next_error("BANNED").await;
    assert_eq!(refused["roomId"], room_id.as_str());
    // The ban ends by itself: out of the list, and the next ENTER is let in.
    none_in_force(&app, &room_id, "bans").await;
    bob_again.join(&room_id, "bob").await;

    assert_eq!(
        sanction(&app, &room_id, "bans", "bob", &alice, None)
            .await
            .status(),
        200
    );
    assert_eq!(
        until_type(&mut bob_again, "REMOVED").await["reason"],
        "banned"
    );
    assert_eq!(lift(&app, &room_id, "bans", "bob", &alice).await, 204);
    bob_again.join(&room_id, "bob").await;
    let metrics = [
        "chat_moderation_actions_total{action=\"kick\"} 1",
        "chat_moderation_actions_total{action=\"ban\"} 2",
        "chat_moderation_actions_total{action=\"unban\"} 1",
        "chat_removals_total{reason=\"kicked\"} 2",
        "chat_removals_total{reason=\"banned\"} 2",
    ];
    app.wait_for_metrics(&metrics).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_kick_ban_and_mute_whom() {
    let app = spawn_app_with(identity_mode).await;
    let alice = token_for("alice");
    let room_id = create_as(&app, &alice, "public").await["roomId"]
        .as_str()
        .unwrap()
        .to_owned();
    for (name, role) in [
        ("olga", "owner"),
        ("mo", "moderator"),
        ("max", "moderator"),
        ("mem", "member"),
    ] {
        assert_eq!(grant(&app, &room_id, name, role, &alice).await, 200);
    }
    let cases = [
        ("mo", "mem", 204),
        ("mo", "nobody", 204),
        ("mo", "max", 403),
        ("mo", "alice", 403),
        ("alice", "mo", 204),
        ("alice", "olga", 403),
        ("mem", "nobody", 403),
        ("stranger", "nobody", 403),
        ("root", "alice", 204),
    ];
    for (actor, target, status) in cases {
        let token = match actor {
            "root" => admin_token(),
            name => token_for(name),
        };
        assert_eq!(
            kick(&app, &room_id, target, &token).await,
            status,
            "{actor} kicks {target}"
        );
        let muted = sanction(&app, &room_id, "mutes", target, &token, None).await;
        assert_eq!(
            muted.status().as_u16(),
            if status == 204 { 200 } else { 403 },
            "{actor} mutes {target}"
        );
        let banned = sanction(&app, &room_id, "bans", target, &token, None).await;
        assert_eq!(
            banned.status().as_u16(),
            if status == 204 { 200 } else { 403 },
            "{actor} bans {target}"
        );
        if status == 204 {
            assert_eq!(lift(&app, &room_id, "bans", target, &token).await, 204);
            assert_eq!(lift(&app, &room_id, "mutes", target, &token).await, 204);
        }
    }

    let path = format!("/api/rooms/{room_id}/bans/mem");
    for bad in [
        json!({"until": "2000-01-01T00:00:00Z"}),
        json!({"until": "tomorrow"}),
        json!({"until": 17}),
        json!({"reason": "r".repeat(501)}),
        json!({"reason": "   "}),
        json!({"why": "x"}),
    ] {
        let response = call_as(&app, Method::PUT, &path, &alice, Some(bad.clone())).await;
        assert_problem(response, 400, "INVALID_REQUEST").await;
    }
    let wrong_type = app
        .http
        .put(app.url(&path))
        .bearer_auth(&alice)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(wrong_type, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    assert!(
        names(&app, &format!("/api/rooms/{room_id}/bans"), &alice, "name")
            .await
            .is_empty(),
        "refusals banned nobody"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_role_in_a_private_room_removes_its_sessions_and_keeps_them_out() {
    let app = spawn_app_with(identity_mode).await;
    let alice = token_for("alice");
    let room_id = create_as(&app, &alice, "private").await["roomId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(grant(&app, &room_id, "bob", "member", &alice).await, 200);
    let mut bob = member(&app, &room_id, "bob").await;

    assert_eq!(revoke(&app, &room_id, "bob", &alice).await, 204);
    let event = until_type(&mut bob, "MODERATION").await;
    assert_eq!(
        (&event["action"], &event["role"]),
        (&json!("revoke"), &json!("member"))
    );
    assert_eq!(
        bob.next_json().await,
        json!({"type": "REMOVED", "roomId": room_id, "reason": "revoked"})
    );
    bob.enter(&room_id, "bob").await;
    bob.next_error("ROOM_NOT_FOUND").await;
    let gone = get_as(&app, &format!("/api/rooms/{room_id}"), &token_for("bob")).await;
    assert_eq!(gone.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_and_moderators_delete_anyones_message_and_owners_delete_the_room() {
    let app = spawn_app_with(identity_mode).await;
    let alice = token_for("alice");
    let room_id = create_as(&app, &alice, "public").await["roomId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(grant(&app, &room_id, "mo", "moderator", &alice).await, 200);
    let mut carol = member(&app, &room_id, "carol").await;
    let mut mo = member(&app, &room_id, "mo").await;
    let mut dave = member(&app, &room_id, "dave").await;
    carol.talk_and_await(&room_id, "carol", "one", 1).await;
    carol.talk_and_await(&room_id, "carol", "two", 1).await;
    let one = carol.history_seq(&app, &room_id, "one").await;
    let two = carol.history_seq(&app, &room_id, "two").await;

    dave.send_json(
        json!({"type": "DELETE", "roomId": room_id, "sender": "dave", "targetSeq": one}),
    )
    .await;
    assert_eq!(until_type(&mut dave, "ERROR").await["code"], "FORBIDDEN");
    mo.send_json(json!({"type": "DELETE", "roomId": room_id, "sender": "mo", "targetSeq": one}))
        .await;
    assert_eq!(until_type(&mut mo, "DELETE").await["targetSeq"], one);
    let mut owner = member(&app, &room_id, "alice").await;
    owner
        .send_json(
            json!({"type": "DELETE", "roomId": room_id, "sender": "alice", "targetSeq": two}),
        )
        .await;
    assert_eq!(until_type(&mut owner, "DELETE").await["targetSeq"], two);

    let path = format!("/api/rooms/{room_id}");
    let refused = call_as(&app, Method::DELETE, &path, &token_for("mo"), None).await;
    assert_problem(refused, 403, "FORBIDDEN").await;
    let deleted = call_as(&app, Method::DELETE, &path, &alice, None).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        until_type(&mut dave, "CLOSED").await["roomId"],
        room_id.as_str()
    );
}

impl WsClient {
    /// The seq of this client's TALK with this text, from the room's history.
    async fn history_seq(&self, app: &TestApp, room_id: &str, text: &str) -> u64 {
        let path = format!("/api/rooms/{room_id}/messages");
        let page: Value = get_as(app, &path, &admin_token())
            .await
            .json()
            .await
            .unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|event| event["type"] == "TALK" && event["message"] == text)
            .and_then(|event| event["seq"].as_u64())
            .expect("the TALK is stored")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_revoking_each_other_at_once_leave_the_room_one_owner() {
    let app = spawn_app_with(identity_mode).await;
    let (alice, bob) = (token_for("alice"), token_for("bob"));
    for round in 0..10 {
        let room_id = create_as(&app, &alice, "public").await["roomId"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(grant(&app, &room_id, "bob", "owner", &alice).await, 200);
        let (first, second) = tokio::join!(
            revoke(&app, &room_id, "bob", &alice),
            revoke(&app, &room_id, "alice", &bob)
        );
        let mut answers = [first, second];
        answers.sort_unstable();
        assert!(
            answers == [204, 403] || answers == [204, 409],
            "round {round}: one wins, the other is no owner any more or the last: {answers:?}"
        );
        let path = format!("/api/rooms/{room_id}/roles");
        let roles: Value = get_as(&app, &path, &admin_token())
            .await
            .json()
            .await
            .unwrap();
        let owners = roles["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| item["role"] == "owner")
            .count();
        assert_eq!(owners, 1, "round {round}: {roles}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_racing_an_enter_leaves_the_name_out_whichever_is_stored_first() {
    let app = spawn_app_with(identity_mode).await;
    let alice = token_for("alice");
    for round in 0..10 {
        let room_id = create_as(&app, &alice, "public").await["roomId"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut bob = connect_as(&app, &token_for("bob")).await;
        let (_, banned) = tokio::join!(
            bob.enter(&room_id, "bob"),
            sanction(&app, &room_id, "bans", "bob", &alice, None)
        );
        assert_eq!(banned.status(), 200);
        let outcome = loop {
            let frame = bob.next_json().await;
            match frame["type"].as_str() {
                Some("REMOVED") => break "removed",
                Some("ERROR") => {
                    assert_eq!(frame["code"], "BANNED", "{frame}");
                    break "refused";
                }
                _ => {}
            }
        };
        members_become(&app, &room_id, 0).await;
        bob.talk(&room_id, "bob", "still here?").await;
        assert_eq!(
            until_type(&mut bob, "ERROR").await["code"],
            "NOT_IN_ROOM",
            "round {round}: {outcome}, and out"
        );
    }
}
