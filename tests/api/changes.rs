//! Messages that change (PROTOCOL.md, "Messages that change: edit, delete, reactions,
//! replies, retention"): every change is an event with the room's next seq, checked against the
//! TALK it names; history shows each TALK as it is now; a delete erases the text from storage.

use std::time::Duration;

use serde_json::{Value, json};

use super::identity::{admin_token, connect_as, create_room_as, get_as, identity_mode, token_for};
use crate::helpers::{TestApp, WsClient, spawn_app, spawn_app_with};

const QUIET: Duration = Duration::from_millis(300);

fn frame(kind: &str, room_id: &str, sender: &str, fields: Value) -> Value {
    let mut frame = json!({"type": kind, "roomId": room_id, "sender": sender});
    for (name, value) in fields.as_object().expect("fields").clone() {
        frame[name] = value;
    }
    frame
}

/// Sends a frame and returns the event of `kind` it stored, as its sender gets it (after
/// the room's events that came before it).
async fn stored(client: &mut WsClient, kind: &str, frame: Value) -> Value {
    let sender = frame["sender"].clone();
    client.send_json(frame).await;
    loop {
        let event = client.next_json().await;
        assert_ne!(event["type"], "ERROR", "{event}");
        if event["type"] == kind && event["sender"] == sender {
            return event;
        }
    }
}

/// Sends a frame and returns its refusal (after the room's events that came before it).
async fn refused(client: &mut WsClient, code: &str, frame: Value) -> Value {
    client.send_json(frame).await;
    loop {
        let answer = client.next_json().await;
        if answer["type"] == "ERROR" {
            assert_eq!(answer["code"], code, "{answer}");
            return answer;
        }
        assert!(
            answer["seq"].is_number(),
            "only events may come first: {answer}"
        );
    }
}

/// alice and bob in a room; alice's TALK "hello" is stored (seq 3), and both have it.
async fn a_talk(app: &TestApp) -> (String, WsClient, WsClient, Value) {
    let (room_id, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
    let talk = frame("TALK", &room_id, "alice", json!({"message": "hello"}));
    let talk = stored(&mut alice, "TALK", talk).await;
    assert_eq!(bob.next_of_type("TALK").await, talk);
    (room_id, alice, bob, talk)
}

/// The stored event at `seq`, as history shows it now.
async fn as_stored(app: &TestApp, room_id: &str, seq: &Value) -> Value {
    at_seq(&app.history(room_id, "?afterSeq=0&limit=500").await, seq)
}

/// The event at `seq` in a page of history.
fn at_seq(events: &[Value], seq: &Value) -> Value {
    events
        .iter()
        .find(|event| event["seq"] == *seq)
        .cloned()
        .expect("the event is in history")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_is_an_event_of_its_own_and_history_shows_the_latest_text() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob, talk) = a_talk(&app).await;
    let edit = frame(
        "EDIT",
        &room_id,
        "alice",
        json!({"targetSeq": talk["seq"], "message": "hello, world", "clientMsgId": "e-1"}),
    );
    let edit = stored(&mut alice, "EDIT", edit).await;

    assert_eq!(edit["seq"], 4);
    assert_eq!(edit["targetSeq"], talk["seq"]);
    assert_eq!(edit["message"], "hello, world");
    assert_eq!(edit["clientMsgId"], "e-1");
    assert!(edit["messageId"].is_string() && edit["sentAt"].is_string());
    assert_eq!(bob.next_of_type("EDIT").await, edit);

    let now = as_stored(&app, &room_id, &talk["seq"]).await;
    assert_eq!(now["message"], "hello, world");
    assert_eq!(now["editedAt"], edit["sentAt"]);
    assert_eq!(
        now["sentAt"], talk["sentAt"],
        "a TALK keeps when it was sent"
    );
    assert_eq!(as_stored(&app, &room_id, &edit["seq"]).await, edit);
    assert_eq!(app.room(&room_id).await["lastSeq"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_author_may_edit_and_a_refusal_stores_nothing() {
    let app = spawn_app().await;
    let (room_id, _alice, mut bob, talk) = a_talk(&app).await;

    let edit = json!({"targetSeq": talk["seq"], "message": "mine now", "clientMsgId": "b-1"});
    let error = refused(&mut bob, "FORBIDDEN", frame("EDIT", &room_id, "bob", edit)).await;
    assert_eq!(error["roomId"], room_id);
    assert_eq!(error["clientMsgId"], "b-1");
    let delete = json!({"targetSeq": talk["seq"]});
    refused(
        &mut bob,
        "FORBIDDEN",
        frame("DELETE", &room_id, "bob", delete),
    )
    .await;
    assert_eq!(app.room(&room_id).await["lastSeq"], talk["seq"]);
    assert_eq!(as_stored(&app, &room_id, &talk["seq"]).await, talk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_must_name_a_talk_of_the_room_that_is_not_deleted() {
    let app = spawn_app().await;
    let (room_id, mut alice, _bob, talk) = a_talk(&app).await;
    let other_room = app.create_room("other").await;
    alice.join(&other_room, "alice").await;

    // 0, past the end, an ENTER (seq 1), the type's maximum, a seq of another room.
    for target in [json!(0), json!(99), json!(1), json!(i64::MAX)] {
        for (kind, fields) in [
            ("EDIT", json!({"targetSeq": target, "message": "x"})),
            ("DELETE", json!({"targetSeq": target})),
            ("REACT", json!({"targetSeq": target, "emoji": "👍"})),
            ("UNREACT", json!({"targetSeq": target, "emoji": "👍"})),
            ("TALK", json!({"replyTo": target, "message": "x"})),
        ] {
            let error = refused(
                &mut alice,
                "TARGET_NOT_FOUND",
                frame(kind, &room_id, "alice", fields),
            )
            .await;
            assert_eq!(error["roomId"], room_id, "{kind} {target}");
        }
    }
    let elsewhere = json!({"targetSeq": talk["seq"], "message": "x"});
    refused(
        &mut alice,
        "TARGET_NOT_FOUND",
        frame("EDIT", &other_room, "alice", elsewhere),
    )
    .await;

    let delete = frame(
        "DELETE",
        &room_id,
        "alice",
        json!({"targetSeq": talk["seq"]}),
    );
    stored(&mut alice, "DELETE", delete).await;
    for (kind, fields) in [
        ("EDIT", json!({"targetSeq": talk["seq"], "message": "x"})),
        ("DELETE", json!({"targetSeq": talk["seq"]})),
        ("REACT", json!({"targetSeq": talk["seq"], "emoji": "👍"})),
        ("TALK", json!({"replyTo": talk["seq"], "message": "x"})),
    ] {
        refused(
            &mut alice,
            "TARGET_NOT_FOUND",
            frame(kind, &room_id, "alice", fields),
        )
        .await;
    }
    assert_eq!(
        app.room(&room_id).await["lastSeq"],
        4,
        "only the DELETE was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_and_emoji_of_the_wrong_type_or_size_are_invalid_messages() {
    let app = spawn_app().await;
    let (room_id, mut alice, _bob, talk) = a_talk(&app).await;

    for fields in [
        json!({"message": "x"}),
        json!({"targetSeq": -1, "message": "x"}),
        json!({"targetSeq": "3", "message": "x"}),
        json!({"targetSeq": 3.5, "message": "x"}),
        json!({"targetSeq": 9_223_372_036_854_775_808_u64, "message": "x"}),
        json!({"targetSeq": talk["seq"]}),
        json!({"targetSeq": talk["seq"], "message": ""}),
        json!({"targetSeq": talk["seq"], "message": 7}),
    ] {
        refused(
            &mut alice,
            "INVALID_MESSAGE",
            frame("EDIT", &room_id, "alice", fields.clone()),
        )
        .await;
    }
    refused(
        &mut alice,
        "MESSAGE_TOO_LONG",
        frame(
            "EDIT",
            &room_id,
            "alice",
            json!({"targetSeq": talk["seq"], "message": "x".repeat(4001)}),
        ),
    )
    .await;
    for emoji in [
        json!(""),
        json!("a".repeat(33)),
        json!("👍 "),
        json!(" "),
        json!(1),
        json!(null),
    ] {
        let fields = json!({"targetSeq": talk["seq"], "emoji": emoji});
        refused(
            &mut alice,
            "INVALID_MESSAGE",
            frame("REACT", &room_id, "alice", fields),
        )
        .await;
    }
    let reply = json!({"message": "x", "replyTo": "3"});
    refused(
        &mut alice,
        "INVALID_MESSAGE",
        frame("TALK", &room_id, "alice", reply),
    )
    .await;
    assert_eq!(app.room(&room_id).await["lastSeq"], talk["seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_before_enter_is_not_in_room() {
    let app = spawn_app().await;
    let (room_id, _alice, _bob, talk) = a_talk(&app).await;
    let mut carol = app.connect().await;

    for (kind, fields) in [
        ("EDIT", json!({"targetSeq": talk["seq"], "message": "x"})),
        ("DELETE", json!({"targetSeq": talk["seq"]})),
        ("REACT", json!({"targetSeq": talk["seq"], "emoji": "👍"})),
        ("UNREACT", json!({"targetSeq": talk["seq"], "emoji": "👍"})),
    ] {
        refused(
            &mut carol,
            "NOT_IN_ROOM",
            frame(kind, &room_id, "alice", fields),
        )
        .await;
    }
    assert_eq!(app.room(&room_id).await["lastSeq"], talk["seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_erases_the_text_of_the_talk_and_its_edits_from_storage() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob, talk) = a_talk(&app).await;
    let edit = json!({"targetSeq": talk["seq"], "message": "a secret passphrase"});
    let edit = stored(&mut alice, "EDIT", frame("EDIT", &room_id, "alice", edit)).await;
    let react = json!({"targetSeq": talk["seq"], "emoji": "👍"});
    stored(&mut bob, "REACT", frame("REACT", &room_id, "bob", react)).await;
    assert_eq!(
        app.rows_holding(&room_id, "secret").await,
        2,
        "the TALK and its EDIT"
    );

    let delete = frame(
        "DELETE",
        &room_id,
        "alice",
        json!({"targetSeq": talk["seq"]}),
    );
    let delete = stored(&mut alice, "DELETE", delete).await;

    assert_eq!(delete["targetSeq"], talk["seq"]);
    assert_eq!(delete["sender"], "alice");
    assert!(delete.get("message").is_none());
    assert_eq!(app.rows_holding(&room_id, "secret").await, 0);
    assert_eq!(app.rows_holding(&room_id, "hello").await, 0);
    let now = as_stored(&app, &room_id, &talk["seq"]).await;
    assert_eq!(now["deleted"], true);
    assert!(now.get("message").is_none() && now.get("reactions").is_none());
    assert_eq!(
        (now["seq"].clone(), now["sender"].clone()),
        (talk["seq"].clone(), talk["sender"].clone())
    );
    assert_eq!(now["sentAt"], talk["sentAt"]);
    let edit_now = as_stored(&app, &room_id, &edit["seq"]).await;
    assert_eq!(edit_now["deleted"], true);
    assert!(edit_now.get("message").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_are_counted_per_emoji_in_the_order_first_used() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob, talk) = a_talk(&app).await;
    let react = |sender: &str, emoji: &str| {
        frame(
            "REACT",
            &room_id,
            sender,
            json!({"targetSeq": talk["seq"], "emoji": emoji}),
        )
    };

    let first = stored(&mut bob, "REACT", react("bob", "👍")).await;
    assert_eq!(
        (first["targetSeq"].clone(), first["emoji"].clone()),
        (talk["seq"].clone(), json!("👍"))
    );
    stored(&mut alice, "REACT", react("alice", "🎉")).await;
    stored(&mut alice, "REACT", react("alice", "👍")).await;

    let now = as_stored(&app, &room_id, &talk["seq"]).await;
    assert_eq!(
        now["reactions"],
        json!([
            {"emoji": "👍", "count": 2, "senders": ["bob", "alice"]},
            {"emoji": "🎉", "count": 1, "senders": ["alice"]},
        ])
    );

    refused(&mut bob, "NO_CHANGE", react("bob", "👍")).await;
    let unreact = json!({"targetSeq": talk["seq"], "emoji": "🎉"});
    refused(
        &mut bob,
        "NO_CHANGE",
        frame("UNREACT", &room_id, "bob", unreact.clone()),
    )
    .await;
    stored(
        &mut alice,
        "UNREACT",
        frame("UNREACT", &room_id, "alice", unreact),
    )
    .await;

    let now = as_stored(&app, &room_id, &talk["seq"]).await;
    assert_eq!(
        now["reactions"],
        json!([{"emoji": "👍", "count": 2, "senders": ["bob", "alice"]}])
    );
    assert_eq!(
        app.room(&room_id).await["lastSeq"],
        7,
        "refusals store nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talk_takes_at_most_20_different_emoji() {
    let app = spawn_app().await;
    let (room_id, mut alice, _bob, talk) = a_talk(&app).await;
    for n in 0..20 {
        let emoji = format!(":e{n}:");
        let react = json!({"targetSeq": talk["seq"], "emoji": emoji});
        stored(
            &mut alice,
            "REACT",
            frame("REACT", &room_id, "alice", react),
        )
        .await;
    }

    let react = json!({"targetSeq": talk["seq"], "emoji": ":e20:"});
    refused(
        &mut alice,
        "TOO_MANY_REACTIONS",
        frame("REACT", &room_id, "alice", react),
    )
    .await;

    let unreact = json!({"targetSeq": talk["seq"], "emoji": ":e0:"});
    stored(
        &mut alice,
        "UNREACT",
        frame("UNREACT", &room_id, "alice", unreact),
    )
    .await;
    let react = json!({"targetSeq": talk["seq"], "emoji": ":e20:"});
    stored(
        &mut alice,
        "REACT",
        frame("REACT", &room_id, "alice", react),
    )
    .await;
    let now = as_stored(&app, &room_id, &talk["seq"]).await;
    assert_eq!(now["reactions"].as_array().unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_carries_its_target_and_replies_are_listed_by_target() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob, talk) = a_talk(&app).await;
    let reply = json!({"message": "hi!", "replyTo": talk["seq"]});
    let reply = stored(&mut bob, "TALK", frame("TALK", &room_id, "bob", reply)).await;
    assert_eq!(reply["replyTo"], talk["seq"]);
    assert_eq!(alice.next_of_type("TALK").await, reply);
    stored(
        &mut alice,
        "TALK",
        frame("TALK", &room_id, "alice", json!({"message": "unrelated"})),
    )
    .await;
    let again = json!({"message": "me too", "replyTo": talk["seq"]});
    let again = stored(&mut alice, "TALK", frame("TALK", &room_id, "alice", again)).await;

    let seqs = |page: Vec<Value>| {
        page.iter()
            .map(|event| event["seq"].clone())
            .collect::<Vec<_>>()
    };
    let query = format!("?replyTo={}", talk["seq"]);
    assert_eq!(
        seqs(app.history(&room_id, &query).await),
        [reply["seq"].clone(), again["seq"].clone()]
    );
    let first_only = format!("?replyTo={}&afterSeq=0&limit=1", talk["seq"]);
    assert_eq!(
        seqs(app.history(&room_id, &first_only).await),
        [reply["seq"].clone()]
    );
    assert!(app.history(&room_id, "?replyTo=99").await.is_empty());
    for bad in ["0", "-1", "x"] {
        let response = app
            .get(&format!("/api/rooms/{room_id}/messages?replyTo={bad}"))
            .await;
        assert_eq!(response.status(), 400, "replyTo={bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_change_comes_back_as_the_first_and_is_stored_once() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob, talk) = a_talk(&app).await;
    let edit = json!({"targetSeq": talk["seq"], "message": "v2", "clientMsgId": "e-9"});
    let first = stored(
        &mut alice,
        "EDIT",
        frame("EDIT", &room_id, "alice", edit.clone()),
    )
    .await;
    bob.next_of_type("EDIT").await;

    alice
        .send_json(frame("EDIT", &room_id, "alice", edit))
        .await;

    let mut copy = first.clone();
    copy["duplicate"] = json!(true);
    assert_eq!(alice.next_json().await, copy);
    bob.expect_silence(QUIET).await;
    assert_eq!(app.room(&room_id).await["lastSeq"], first["seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_replays_every_change_in_order_with_the_talk_as_it_is_now() {
    let app = spawn_app().await;
    let (room_id, mut alice, bob, talk) = a_talk(&app).await;
    let last_seen = talk["seq"].as_u64().unwrap();
    bob.close().await;
    // Its LEAVE is stored on its own; wait for it, so the room's order is known.
    while alice.next_json().await["type"] != "LEAVE" {}
    let edit = json!({"targetSeq": talk["seq"], "message": "edited while you were away"});
    stored(&mut alice, "EDIT", frame("EDIT", &room_id, "alice", edit)).await;
    let second = stored(
        &mut alice,
        "TALK",
        frame("TALK", &room_id, "alice", json!({"message": "bye"})),
    )
    .await;
    let delete = frame(
        "DELETE",
        &room_id,
        "alice",
        json!({"targetSeq": second["seq"]}),
    );
    stored(&mut alice, "DELETE", delete).await;

    let mut bob = app.connect().await;
    bob.enter_after(&room_id, "bob", last_seen).await;

    let mut kinds = Vec::new();
    loop {
        let event = bob.next_json().await;
        kinds.push(event["type"].as_str().unwrap().to_owned());
        match event["type"].as_str() {
            Some("EDIT") => assert_eq!(event["message"], "edited while you were away"),
            Some("TALK") => assert_eq!(event["deleted"], true, "read from storage: {event}"),
            Some("ENTER") if event["sender"] == "bob" => break,
            _ => {}
        }
    }
    assert_eq!(kinds, ["LEAVE", "EDIT", "TALK", "DELETE", "ENTER"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_identity_an_admin_may_delete_anyones_talk_but_not_edit_it() {
    let app = spawn_app_with(identity_mode).await;
    let room_id = create_room_as(&app, &token_for("alice")).await;
    let mut alice = connect_as(&app, &token_for("alice")).await;
    let mut root = connect_as(&app, &admin_token()).await;
    alice.join(&room_id, "alice").await;
    root.join(&room_id, "root").await;
    let talk = stored(
        &mut alice,
        "TALK",
        frame("TALK", &room_id, "alice", json!({"message": "hi"})),
    )
    .await;

    let edit = json!({"targetSeq": talk["seq"], "message": "x"});
    refused(
        &mut root,
        "FORBIDDEN",
        frame("EDIT", &room_id, "root", edit),
    )
    .await;
    let delete = frame(
        "DELETE",
        &room_id,
        "root",
        json!({"targetSeq": talk["seq"]}),
    );
    let delete = stored(&mut root, "DELETE", delete).await;

    assert_eq!(delete["sender"], "root");
    assert_eq!(
        as_stored_as(&app, &room_id, &talk["seq"]).await["deleted"],
        true
    );
}

/// [`as_stored`] in identity mode, where history needs a token.
async fn as_stored_as(app: &TestApp, room_id: &str, seq: &Value) -> Value {
    let path = format!("/api/rooms/{room_id}/messages?afterSeq=0");
    let page: Value = get_as(app, &path, &token_for("alice"))
        .await
        .json()
        .await
        .unwrap();
    at_seq(page["items"].as_array().expect("items"), seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_lists_its_first_100_senders_and_counts_them_all() {
    let app = spawn_app().await;
    let (room_id, _alice, _bob, talk) = a_talk(&app).await;
    let target = talk["seq"].as_i64().unwrap();
    let rows: Vec<String> = (0..101)
        .map(|n| format!("('{room_id}', {target}, '👍', 'fan-{n:03}', {})", 100 + n))
        .collect();
    app.sql(&format!(
        "INSERT INTO reactions (room_id, target_seq, emoji, sender, seq) VALUES {}",
        rows.join(", ")
    ))
    .await;

    let now = as_stored(&app, &room_id, &talk["seq"]).await;
    let reaction = &now["reactions"][0];
    assert_eq!(reaction["count"], 101);
    let senders = reaction["senders"].as_array().unwrap();
    assert_eq!(senders.len(), 100);
    assert_eq!(
        (&senders[0], &senders[99]),
        (&json!("fan-000"), &json!("fan-099"))
    );
}
