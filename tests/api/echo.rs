//! Quieter sessions (PROTOCOL.md, "Quieter sessions: `echo` and `ACK`"): a room entered with
//! `"echo": false` acknowledges the session's own TALKs with an `ACK` instead of the full copy.

use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, spawn_app};

async fn enter_quietly(client: &mut WsClient, room_id: &str, sender: &str, echo: Value) -> Value {
    client
        .send_json(json!({"type": "ENTER", "roomId": room_id, "sender": sender, "echo": echo}))
        .await;
    client.next_of_type("ENTER").await
}

/// Alice entered with `echo: false`, then bob; each has read every ENTER so far.
async fn quiet_alice_and_bob(app: &TestApp) -> (String, WsClient, WsClient) {
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    enter_quietly(&mut alice, &room_id, "alice", json!(false)).await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;
    assert_eq!(alice.next_of_type("ENTER").await["sender"], "bob");
    (room_id, alice, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_off_acknowledges_a_talk_with_an_ack_and_others_get_the_full_event() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = quiet_alice_and_bob(&app).await;

    alice.talk_with_id(&room_id, "alice", "hello", "c-17").await;

    let ack = alice.next_of_type("ACK").await;
    let talk = bob.next_of_type("TALK").await;
    assert_eq!(
        ack,
        json!({
            "type": "ACK",
            "roomId": room_id,
            "seq": talk["seq"],
            "messageId": talk["messageId"],
            "sentAt": talk["sentAt"],
            "clientMsgId": "c-17",
        })
    );
    assert_eq!(
        (&talk["message"], &talk["clientMsgId"]),
        (&json!("hello"), &json!("c-17"))
    );

    alice.talk(&room_id, "alice", "no id").await;
    let ack = alice.next_of_type("ACK").await;
    assert!(ack.get("clientMsgId").is_none(), "{ack}");
    assert_eq!(bob.next_of_type("TALK").await["seq"], ack["seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_off_changes_nothing_else() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = quiet_alice_and_bob(&app).await;

    bob.talk(&room_id, "bob", "from bob").await;
    assert_eq!(alice.next_of_type("TALK").await["message"], "from bob");
    bob.next_of_type("TALK").await;

    alice.talk(&room_id, "alice", &"x".repeat(4001)).await;
    alice.next_error("MESSAGE_TOO_LONG").await;

    bob.leave(&room_id, "bob").await;
    assert_eq!(alice.next_of_type("LEAVE").await["sender"], "bob");

    alice.leave(&room_id, "alice").await;
    app.wait_for_member_count(&room_id, 0).await;
    let history = app.history(&room_id, "").await;
    assert_eq!(
        history.len(),
        5,
        "ENTER, ENTER, TALK, LEAVE, LEAVE: {history:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_enter_switches_echo_and_one_without_echo_keeps_it() {
    let app = spawn_app().await;
    let (room_id, mut alice, mut bob) = quiet_alice_and_bob(&app).await;

    let switches = [
        (None, "ACK"),
        (Some(json!(true)), "TALK"),
        (None, "TALK"),
        (Some(json!(false)), "ACK"),
    ];
    for (i, (echo, expected)) in switches.into_iter().enumerate() {
        let mut enter = json!({"type": "ENTER", "roomId": room_id, "sender": "alice"});
        if let Some(echo) = echo {
            enter["echo"] = echo;
        }
        alice.send_json(enter).await;
        let text = format!("m{i}");
        alice.talk(&room_id, "alice", &text).await;

        let mine = alice.next_json().await;
        assert_eq!(mine["type"], expected, "after switch {i}: {mine}");
        let theirs = bob.next_of_type("TALK").await;
        assert_eq!(
            (&theirs["message"], &theirs["seq"]),
            (&json!(text), &mine["seq"])
        );
    }
    assert_eq!(
        app.room(&room_id).await["lastSeq"],
        2 + 4,
        "a repeated ENTER stores nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_is_per_room() {
    let app = spawn_app().await;
    let (quiet, loud) = (
        app.create_room("quiet").await,
        app.create_room("loud").await,
    );
    let mut alice = app.connect().await;
    enter_quietly(&mut alice, &quiet, "alice", json!(false)).await;
    enter_quietly(&mut alice, &loud, "alice", json!(true)).await;

    alice.talk(&quiet, "alice", "shh").await;
    alice.talk(&loud, "alice", "hey").await;

    let first = alice.next_json().await;
    let second = alice.next_json().await;
    let mut by_room = [first, second];
    by_room.sort_by_key(|frame| frame["roomId"] != json!(quiet));
    assert_eq!(by_room[0]["type"], "ACK");
    assert_eq!(
        (&by_room[1]["type"], &by_room[1]["message"]),
        (&json!("TALK"), &json!("hey"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_other_than_true_or_false_is_invalid_and_enters_nothing() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;

    for echo in [json!("false"), json!(0), json!(1), json!([]), json!({})] {
        alice
            .send_json(json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "echo": echo, "clientMsgId": "c"}))
            .await;
        let error = alice.next_error("INVALID_MESSAGE").await;
        assert_eq!(
            (&error["roomId"], &error["clientMsgId"]),
            (&json!(room_id), &json!("c")),
            "{echo}"
        );
    }
    assert_eq!(app.room(&room_id).await["lastSeq"], 0);
    assert_eq!(app.room(&room_id).await["memberCount"], 0);

    // `null` counts as absent: the default, echo on.
    enter_quietly(&mut alice, &room_id, "alice", json!(null)).await;
    alice.talk(&room_id, "alice", "loud").await;
    assert_eq!(alice.next_of_type("TALK").await["message"], "loud");
}
