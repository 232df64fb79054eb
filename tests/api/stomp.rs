//! STOMP over WebSocket (PROTOCOL.md, "STOMP 1.2 over WebSocket"), frame by frame: the
//! handshake, subscriptions and their resume, SEND doing what the same frame does on
//! `/ws/chat`, receipts after storage, refusals, leaving, and limits.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::suite::stomp_client::{Frame, Next, StompClient, frame, open, open_small_buffer};

const QUIET: Duration = Duration::from_millis(300);

fn topic(room_id: &str) -> String {
    format!("/topic/rooms/{room_id}")
}

fn enter(room_id: &str, sender: &str) -> Value {
    json!({"type": "ENTER", "roomId": room_id, "sender": sender})
}

fn talk(room_id: &str, sender: &str, message: &str) -> Value {
    json!({"type": "TALK", "roomId": room_id, "sender": sender, "message": message})
}

/// A STOMP connection subscribed to the room and entered in it as `sender`, having read its
/// own ENTER.
async fn stomp_member(app: &TestApp, room_id: &str, sender: &str) -> (StompClient, Value) {
    let mut client = StompClient::connect(app.port).await;
    client.subscribe("room", &topic(room_id)).await;
    client.chat(enter(room_id, sender)).await;
    let event = client.next_event().await;
    assert_eq!(
        (&event["type"], &event["sender"]),
        (&json!("ENTER"), &json!(sender))
    );
    (client, event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_selects_the_newest_stomp_subprotocol_offered_and_accepts_none() {
    let app = spawn_app().await;
    let cases = [
        ("v10.stomp, v12.stomp, v11.stomp", Some("v12.stomp")),
        ("v11.stomp,v10.stomp", Some("v11.stomp")),
        ("v10.stomp", Some("v10.stomp")),
        ("", None),
    ];
    for (offered, chosen) in cases {
        let mut client = open(app.port, "/ws/stomp", offered, &[]).await;
        assert_eq!(client.protocol.as_deref(), chosen, "offered {offered:?}");
        client
            .send_frame("CONNECT", &[("accept-version", "1.2")], "")
            .await;
        client.expect("CONNECTED").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_or_stomp_without_host_gets_connected_with_the_newest_shared_version() {
    let app = spawn_app().await;
    let cases = [
        ("CONNECT", Some("1.2,1.1,1.0"), "1.2"),
        ("STOMP", Some("1.2"), "1.2"),
        ("CONNECT", Some("1.1,1.0"), "1.1"),
        ("CONNECT", Some("1.0"), "1.0"),
        ("CONNECT", None, "1.0"),
    ];
    let mut sessions = HashSet::new();
    for (command, accept, version) in cases {
        let mut client = open(app.port, "/ws/stomp", "", &[]).await;
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("accept-version", a)).into_iter().collect();
        client.send_frame(command, &headers, "").await;

        let connected = client.expect("CONNECTED").await;
        assert_eq!(
            connected.header("version"),
            Some(version),
            "{command} {accept:?}"
        );
        assert_eq!(connected.header("heart-beat"), Some("10000,10000"));
        assert!(
            connected
                .header("server")
                .is_some_and(|s| s.starts_with("chat/"))
        );
        let session = connected.header("session").expect("a session header");
        assert!(sessions.insert(session.to_owned()), "sessions are distinct");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_common_version_gets_an_error_listing_ours_then_the_close() {
    let app = spawn_app().await;
    let mut client = open(app.port, "/ws/stomp", "", &[]).await;
    client
        .send_frame("CONNECT", &[("accept-version", "2.0,1.3")], "")
        .await;

    let error = client.expect("ERROR").await;
    assert_eq!(error.header("version"), Some("1.2,1.1,1.0"));
    assert!(error.header("message").is_some());
    assert!(client.expect_close().await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_before_connect_gets_an_error_then_the_close() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut client = open(app.port, "/ws/stomp", "", &[]).await;
    client
        .send_frame(
            "SEND",
            &[("destination", "/pub/chat/message")],
            &enter(&room_id, "x").to_string(),
        )
        .await;

    assert_eq!(
        client.expect("ERROR").await.header("message"),
        Some("NOT_CONNECTED")
    );
    assert!(client.expect_close().await.is_some());
    assert_eq!(app.room(&room_id).await["lastSeq"], 0, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_flow_subscribe_enter_talk_disconnect_matches_ws_chat() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;
    let mut alice = StompClient::connect(app.port).await;
    let destination = format!("/sub/chat/room/{room_id}");
    alice.subscribe("sub-0", &destination).await;

    alice.chat(enter(&room_id, "alice")).await;
    let message = alice.expect("MESSAGE").await;
    assert_eq!(message.header("destination"), Some(destination.as_str()));
    assert_eq!(message.header("subscription"), Some("sub-0"));
    assert_eq!(message.header("content-type"), Some("application/json"));
    let length = message.body.len().to_string();
    assert_eq!(message.header("content-length"), Some(length.as_str()));
    let event = message.json();
    assert_eq!(message.header("message-id"), event["messageId"].as_str());
    assert_eq!(
        message.header("seq"),
        Some(event["seq"].to_string().as_str())
    );
    assert_eq!(event["message"], "alice entered the room.");
    assert_eq!(
        event,
        bob.next_of_type("ENTER").await,
        "the body is the /ws/chat event"
    );

    let mut said = talk(&room_id, "alice", "hello");
    said["clientMsgId"] = json!("c-1");
    alice.chat(said).await;
    let mine = alice.next_event().await;
    assert_eq!(mine, bob.next_of_type("TALK").await);
    assert_eq!(
        (&mine["message"], &mine["clientMsgId"]),
        (&json!("hello"), &json!("c-1"))
    );

    bob.talk(&room_id, "bob", "hi alice").await;
    let theirs = alice.next_event().await;
    assert_eq!(
        (&theirs["sender"], &theirs["message"]),
        (&json!("bob"), &json!("hi alice"))
    );
    bob.next_of_type("TALK").await;

    alice
        .send_frame("DISCONNECT", &[("receipt", "bye")], "")
        .await;
    assert_eq!(
        alice.expect("RECEIPT").await.header("receipt-id"),
        Some("bye")
    );
    assert!(alice.expect_close().await.is_some());
    let leave = bob.next_of_type("LEAVE").await;
    assert_eq!(leave["sender"], "alice");
    assert_eq!(app.room(&room_id).await["memberCount"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_topic_spelling_delivers_the_room_each_as_subscribed() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut reader = StompClient::connect(app.port).await;
    let destinations = [
        format!("/topic/rooms/{room_id}"),
        format!("/sub/chat/room/{room_id}"),
        format!("/topic/chat/room/{room_id}"),
    ];
    for (i, destination) in destinations.iter().enumerate() {
        reader.subscribe(&format!("s{i}"), destination).await;
    }
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;

    let mut seen = HashSet::new();
    for _ in 0..3 {
        let message = reader.expect("MESSAGE").await;
        assert_eq!(message.json()["sender"], "bob");
        let destination = message.header("destination").unwrap().to_owned();
        let subscription = message.header("subscription").unwrap();
        assert_eq!(
            destination,
            destinations[subscription[1..].parse::<usize>().unwrap()]
        );
        seen.insert(destination);
    }
    assert_eq!(seen.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_receives_but_does_not_enter() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut reader = StompClient::connect(app.port).await;
    reader.subscribe("errors", "/user/queue/errors").await;
    reader.subscribe("room", &topic(&room_id)).await;

    assert_eq!(app.room(&room_id).await["memberCount"], 0);
    reader.chat(talk(&room_id, "alice", "not yet")).await;
    let refusal = reader.expect("MESSAGE").await;
    assert_eq!(refusal.header("subscription"), Some("errors"));
    assert_eq!(refusal.json()["code"], "NOT_IN_ROOM");
    assert_eq!(app.room(&room_id).await["lastSeq"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_last_seq_delivery_starts_with_the_next_event() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;
    bob.talk_and_await(&room_id, "bob", "before", 2).await;

    let mut reader = StompClient::connect(app.port).await;
    reader.subscribe("room", &topic(&room_id)).await;
    bob.talk(&room_id, "bob", "after").await;

    let event = reader.next_event().await;
    assert_eq!(
        (&event["seq"], &event["message"]),
        (&json!(4), &json!("after"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_seq_replays_what_followed_then_live_events_with_no_gap_or_duplicate() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;
    bob.talk_and_await(&room_id, "bob", "stored", 30).await;
    // Bob keeps talking while the subscription replays.
    let talker = {
        let room_id = room_id.clone();
        tokio::spawn(async move {
            bob.talk_and_await(&room_id, "bob", "live", 30).await;
            bob
        })
    };

    let mut reader = StompClient::connect(app.port).await;
    reader
        .ask_to_subscribe("room", &topic(&room_id), Some("10"))
        .await;
    reader.expect("RECEIPT").await;
    let mut seqs = Vec::new();
    while seqs.last() != Some(&61) {
        let message = reader.expect("MESSAGE").await;
        let seq: u64 = message.header("seq").unwrap().parse().unwrap();
        assert_eq!(message.json()["seq"], seq);
        seqs.push(seq);
    }
    assert_eq!(seqs, (11..=61).collect::<Vec<_>>());
    talker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_seq_at_its_extremes() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;

    // Each round's TALK is stored, so the one past the end starts with its own TALK: seq 4.
    for (last_seq, first) in [("0", 1), ("1", 2), ("9223372036854775807", 4)] {
        let mut reader = StompClient::connect(app.port).await;
        reader
            .ask_to_subscribe("r", &topic(&room_id), Some(last_seq))
            .await;
        let mut seqs = Vec::new();
        let trigger = format!("after {last_seq}");
        let mut talked = false;
        loop {
            let frame = reader.next_frame().await;
            if frame.command == "RECEIPT" && !talked {
                bob.talk(&room_id, "bob", &trigger).await;
                talked = true;
                continue;
            }
            let event = frame.json();
            seqs.push(event["seq"].as_u64().unwrap());
            if event["message"] == trigger {
                break;
            }
        }
        bob.next_of_type("TALK").await;
        assert_eq!(seqs[0], first, "last-seq {last_seq}: {seqs:?}");
    }

    for bad in [
        "-1",
        "abc",
        "1.5",
        "9223372036854775808",
        "18446744073709551616",
        "",
    ] {
        let mut reader = StompClient::connect(app.port).await;
        reader
            .ask_to_subscribe("r", &topic(&room_id), Some(bad))
            .await;
        let error = reader.expect("ERROR").await;
        assert_eq!(
            error.header("message"),
            Some("INVALID_MESSAGE"),
            "last-seq {bad:?}"
        );
        assert_eq!(error.header("receipt-id"), Some("r"));
        assert!(reader.expect_close().await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_room_or_destination_gets_an_error_then_the_close() {
    let app = spawn_app().await;
    let unknown_room = uuid::Uuid::new_v4();
    let cases = [
        (format!("/topic/rooms/{unknown_room}"), "ROOM_NOT_FOUND"),
        (format!("/sub/chat/room/{unknown_room}"), "ROOM_NOT_FOUND"),
        ("/topic/rooms/not-a-uuid".to_owned(), "UNKNOWN_DESTINATION"),
        ("/topic/rooms/".to_owned(), "UNKNOWN_DESTINATION"),
        ("/queue/elsewhere".to_owned(), "UNKNOWN_DESTINATION"),
    ];
    for (destination, code) in cases {
        let mut reader = StompClient::connect(app.port).await;
        reader.ask_to_subscribe("r", &destination, None).await;
        let error = reader.expect("ERROR").await;
        assert_eq!(error.header("message"), Some(code), "{destination}");
        assert_eq!(error.header("receipt-id"), Some("r"));
        assert!(reader.expect_close().await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_without_an_id_or_reusing_one_gets_an_error() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut reader = StompClient::connect(app.port).await;
    reader
        .send_frame("SUBSCRIBE", &[("destination", &topic(&room_id))], "")
        .await;
    assert_eq!(
        reader.expect("ERROR").await.header("message"),
        Some("INVALID_MESSAGE")
    );

    let mut reader = StompClient::connect(app.port).await;
    reader.subscribe("r", &topic(&room_id)).await;
    reader
        .send_frame(
            "SUBSCRIBE",
            &[("id", "r"), ("destination", &topic(&room_id))],
            "",
        )
        .await;
    assert_eq!(
        reader.expect("ERROR").await.header("message"),
        Some("INVALID_MESSAGE")
    );
    assert!(reader.expect_close().await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_that_delivery_only() {
    let app = spawn_app().await;
    let (first, second) = (app.create_room("one").await, app.create_room("two").await);
    let mut bob = app.connect().await;
    bob.join(&first, "bob").await;
    bob.join(&second, "bob").await;
    let mut reader = StompClient::connect(app.port).await;
    reader.subscribe("a", &topic(&first)).await;
    reader.subscribe("b", &topic(&second)).await;

    reader
        .send_frame("UNSUBSCRIBE", &[("id", "a"), ("receipt", "u")], "")
        .await;
    assert_eq!(
        reader.expect("RECEIPT").await.header("receipt-id"),
        Some("u")
    );
    bob.talk(&first, "bob", "to the first").await;
    bob.talk(&second, "bob", "to the second").await;

    let message = reader.expect("MESSAGE").await;
    assert_eq!(message.header("subscription"), Some("b"));
    assert_eq!(message.json()["message"], "to the second");
    assert!(
        !matches!(reader.try_next(QUIET).await, Some(Next::Frame(_))),
        "nothing more arrives"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_in_the_destination_wins_over_the_bodys() {
    let app = spawn_app().await;
    let (here, there) = (
        app.create_room("here").await,
        app.create_room("there").await,
    );
    let mut alice = StompClient::connect(app.port).await;
    alice.subscribe("here", &topic(&here)).await;
    let destination = format!("/app/rooms/{here}");

    alice
        .send_frame(
            "SEND",
            &[("destination", &destination)],
            &enter(&there, "alice").to_string(),
        )
        .await;
    let body = json!({"type": "TALK", "sender": "alice", "message": "no roomId"});
    alice
        .send_frame("SEND", &[("destination", &destination)], &body.to_string())
        .await;

    assert_eq!(alice.next_event().await["type"], "ENTER");
    let said = alice.next_event().await;
    assert_eq!(
        (&said["roomId"], &said["message"]),
        (&json!(here), &json!("no roomId"))
    );
    assert_eq!(app.room(&there).await["lastSeq"], 0);
    assert_eq!(app.room(&here).await["lastSeq"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_means_leave() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let (mut alice, _) = stomp_member(&app, &room_id, "alice").await;

    alice
        .chat(json!({"type": "QUIT", "roomId": room_id, "sender": "alice"}))
        .await;

    let leave = alice.next_event().await;
    assert_eq!(
        (&leave["type"], &leave["sender"]),
        (&json!("LEAVE"), &json!("alice"))
    );
    assert_eq!(app.room(&room_id).await["memberCount"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_for_a_send_comes_once_its_event_is_stored() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = StompClient::connect(app.port).await;
    alice
        .send_frame(
            "SEND",
            &[("destination", "/pub/chat/message"), ("receipt", "in")],
            &enter(&room_id, "alice").to_string(),
        )
        .await;
    assert_eq!(
        alice.expect("RECEIPT").await.header("receipt-id"),
        Some("in")
    );
    assert_eq!(app.stored_events(&room_id).await, 1);

    let lock = app.hold_write_lock().await;
    alice
        .send_frame(
            "SEND",
            &[("destination", "/pub/chat/message"), ("receipt", "said")],
            &talk(&room_id, "alice", "held").to_string(),
        )
        .await;
    app.wait_for_writer_to_take(2).await;
    assert!(
        alice.try_next(QUIET).await.is_none(),
        "no receipt before the commit"
    );
    lock.release().await;

    assert_eq!(
        alice.expect("RECEIPT").await.header("receipt-id"),
        Some("said")
    );
    let history = app.history(&room_id, "").await;
    assert_eq!(history.last().unwrap()["message"], "held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_receipt_comes_after_what_was_sent_before_it_took_effect() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let (mut alice, _) = stomp_member(&app, &room_id, "alice").await;

    let lock = app.hold_write_lock().await;
    let said = talk(&room_id, "alice", "just before leaving").to_string();
    let pipelined = [
        frame(
            "SEND",
            &[("destination", "/pub/chat/message"), ("receipt", "said")],
            &said,
        ),
        frame("DISCONNECT", &[("receipt", "bye")], ""),
    ]
    .concat();
    alice.send(&pipelined).await;
    app.wait_for_writer_to_take(2).await;
    assert!(
        alice.try_next(QUIET).await.is_none(),
        "nothing before the commit"
    );
    lock.release().await;

    let mut receipts = Vec::new();
    while receipts.len() < 2 {
        let frame = alice.next_frame().await;
        if frame.command == "RECEIPT" {
            receipts.push(frame.header("receipt-id").unwrap().to_owned());
        }
    }
    assert_eq!(receipts, ["said", "bye"]);
    assert_eq!(alice.expect_close().await, Some(1000));
    app.wait_for_member_count(&room_id, 0).await;
    let history = app.history(&room_id, "").await;
    let kinds: Vec<&str> = history
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ENTER", "TALK", "LEAVE"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_errors_subscription_a_refused_send_gets_a_message_there_and_no_receipt() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = StompClient::connect(app.port).await;
    alice.subscribe("errs", "/user/queue/errors").await;

    let mut early = talk(&room_id, "alice", "too early");
    early["clientMsgId"] = json!("c-9");
    let refused = [
        (
            "/pub/chat/message".to_owned(),
            early.to_string(),
            "NOT_IN_ROOM",
        ),
        (
            "/pub/chat/message".to_owned(),
            "{not json".to_owned(),
            "INVALID_JSON",
        ),
        (
            "/pub/chat/message".to_owned(),
            json!({"type": "DANCE"}).to_string(),
            "INVALID_MESSAGE",
        ),
        (
            "/pub/elsewhere".to_owned(),
            enter(&room_id, "alice").to_string(),
            "INVALID_MESSAGE",
        ),
        (
            format!("/app/rooms/{}", uuid::Uuid::new_v4()),
            enter(&room_id, "a").to_string(),
            "ROOM_NOT_FOUND",
        ),
    ];
    for (destination, body, code) in refused {
        alice
            .send_frame(
                "SEND",
                &[("destination", destination.as_str()), ("receipt", "r")],
                &body,
            )
            .await;
        let message = alice.expect("MESSAGE").await;
        assert_eq!(message.header("destination"), Some("/user/queue/errors"));
        assert_eq!(message.header("subscription"), Some("errs"));
        let error = message.json();
        assert_eq!(
            (&error["type"], &error["code"]),
            (&json!("ERROR"), &json!(code)),
            "{body}"
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        if code == "NOT_IN_ROOM" {
            assert_eq!(error["clientMsgId"], "c-9");
        }
    }

    alice.subscribe("room", &topic(&room_id)).await;
    alice.chat(enter(&room_id, "alice")).await;
    assert_eq!(
        alice.next_event().await["type"],
        "ENTER",
        "the connection goes on"
    );
    assert_eq!(
        app.room(&room_id).await["lastSeq"],
        1,
        "only the ENTER was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_one_a_refused_send_gets_an_error_with_its_receipt_id_then_the_close() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = StompClient::connect(app.port).await;
    let mut early = talk(&room_id, "alice", "too early");
    early["clientMsgId"] = json!("c-1");

    alice
        .send_frame(
            "SEND",
            &[("destination", "/pub/chat/message"), ("receipt", "r-1")],
            &early.to_string(),
        )
        .await;

    let error = alice.expect("ERROR").await;
    assert_eq!(error.header("message"), Some("NOT_IN_ROOM"));
    assert_eq!(error.header("receipt-id"), Some("r-1"));
    let body = error.json();
    assert_eq!(
        (&body["type"], &body["code"]),
        (&json!("ERROR"), &json!("NOT_IN_ROOM"))
    );
    assert_eq!(body["clientMsgId"], "c-1");
    assert!(alice.expect_close().await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talk_right_after_a_failed_enter_is_refused() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::new_v4().to_string();
    let mut alice = StompClient::connect(app.port).await;
    alice.subscribe("errs", "/user/queue/errors").await;
    let pipelined = format!(
        "{}{}",
        frame(
            "SEND",
            &[("destination", "/pub/chat/message")],
            &enter(&missing, "alice").to_string()
        ),
        frame(
            "SEND",
            &[("destination", "/pub/chat/message")],
            &talk(&missing, "alice", "hi").to_string()
        ),
    );
    alice.send(&pipelined).await;

    assert_eq!(alice.next_event().await["code"], "ROOM_NOT_FOUND");
    assert_eq!(alice.next_event().await["code"], "NOT_IN_ROOM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_unsupported_and_ack_nack_only_answer_receipts() {
    let app = spawn_app().await;
    for command in ["BEGIN", "COMMIT", "ABORT"] {
        let mut client = StompClient::connect(app.port).await;
        client
            .send_frame(command, &[("transaction", "tx1")], "")
            .await;
        assert_eq!(
            client.expect("ERROR").await.header("message"),
            Some("UNSUPPORTED")
        );
        assert!(client.expect_close().await.is_some());
    }
    let mut client = StompClient::connect(app.port).await;
    for (command, receipt) in [("ACK", "a"), ("NACK", "n")] {
        client
            .send_frame(command, &[("id", "m-1"), ("receipt", receipt)], "")
            .await;
        assert_eq!(
            client.expect("RECEIPT").await.header("receipt-id"),
            Some(receipt)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_stores_a_leave_for_every_room_it_entered() {
    let app = spawn_app().await;
    let (first, second) = (app.create_room("one").await, app.create_room("two").await);
    let mut bob = app.connect().await;
    bob.join(&first, "bob").await;
    bob.join(&second, "bob").await;
    let mut alice = StompClient::connect(app.port).await;
    for room_id in [&first, &second] {
        alice
            .send_frame(
                "SEND",
                &[("destination", "/pub/chat/message"), ("receipt", room_id)],
                &enter(room_id, "alice").to_string(),
            )
            .await;
        alice.expect("RECEIPT").await;
    }
    assert_eq!(bob.next_of_type("ENTER").await["sender"], "alice");
    assert_eq!(bob.next_of_type("ENTER").await["sender"], "alice");

    drop(alice);

    let mut left = HashSet::new();
    for _ in 0..2 {
        let leave = bob.next_of_type("LEAVE").await;
        assert_eq!(leave["sender"], "alice");
        left.insert(leave["roomId"].as_str().unwrap().to_owned());
    }
    assert_eq!(left, HashSet::from([first, second]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_frames_in_one_message_and_one_frame_over_several_both_work() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = StompClient::connect(app.port).await;
    let destination = [("destination", "/pub/chat/message")];
    let batch = [
        frame(
            "SUBSCRIBE",
            &[("id", "r"), ("destination", &topic(&room_id))],
            "",
        ),
        frame("SEND", &destination, &enter(&room_id, "alice").to_string()),
        "\n".to_owned(),
        frame(
            "SEND",
            &destination,
            &talk(&room_id, "alice", "one").to_string(),
        ),
    ]
    .concat();
    alice.send(&batch).await;
    assert_eq!(alice.next_event().await["type"], "ENTER");
    assert_eq!(alice.next_event().await["message"], "one");

    let split = frame(
        "SEND",
        &destination,
        &talk(&room_id, "alice", "two").to_string(),
    );
    for piece in [
        &split[..3],
        &split[3..20],
        &split[20..split.len() - 1],
        &split[split.len() - 1..],
    ] {
        alice.send(piece).await;
    }
    assert_eq!(alice.next_event().await["message"], "two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_messages_crlf_and_content_length_are_read_too() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = StompClient::connect(app.port).await;
    alice.subscribe("r", &topic(&room_id)).await;
    let enter = frame(
        "SEND",
        &[("destination", "/pub/chat/message")],
        &enter(&room_id, "a").to_string(),
    );
    alice
        .ws
        .send(Message::binary(enter.into_bytes()))
        .await
        .unwrap();
    assert_eq!(alice.next_event().await["type"], "ENTER");

    let body = talk(&room_id, "a", "crlf").to_string();
    let crlf = format!("SEND\r\ndestination:/pub/chat/message\r\n\r\n{body}\0");
    alice.send(&crlf).await;
    assert_eq!(alice.next_event().await["message"], "crlf");

    let body = talk(&room_id, "a", "sized").to_string();
    let length = body.len().to_string();
    let sized = frame(
        "SEND",
        &[
            ("destination", "/pub/chat/message"),
            ("content-length", &length),
        ],
        &body,
    );
    let next = frame(
        "SEND",
        &[("destination", "/pub/chat/message")],
        &talk(&room_id, "a", "after").to_string(),
    );
    alice.send(&format!("{sized}\n{next}")).await;
    assert_eq!(alice.next_event().await["message"], "sized");
    assert_eq!(alice.next_event().await["message"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_escapes_are_decoded_in_1_2_sessions_only() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;

    let mut modern = StompClient::connect(app.port).await;
    modern.subscribe("a\\cb", &topic(&room_id)).await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;
    let message = modern.expect("MESSAGE").await;
    assert_eq!(
        message.header("subscription"),
        Some("a\\cb"),
        "decoded a:b, encoded again"
    );
    modern
        .send_frame(
            "SUBSCRIBE",
            &[("id", "x"), ("destination", "/queue/a\\cb")],
            "",
        )
        .await;
    assert!(modern.expect("ERROR").await.body.contains("/queue/a:b"));

    for version in ["1.1", "1.0"] {
        let mut legacy = open(app.port, "/ws/stomp", "", &[]).await;
        legacy
            .send_frame("CONNECT", &[("accept-version", version)], "")
            .await;
        legacy.expect("CONNECTED").await;
        legacy
            .send_frame(
                "SUBSCRIBE",
                &[("id", "x"), ("destination", "/queue/a\\cb")],
                "",
            )
            .await;
        let error = legacy.expect("ERROR").await;
        assert!(
            error.body.contains("/queue/a\\cb"),
            "{version}: {}",
            error.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_64_kib_or_a_malformed_one_gets_an_error_then_the_close() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let huge = talk(&room_id, "alice", &"x".repeat(64 * 1024)).to_string();
    let too_big = frame("SEND", &[("destination", "/pub/chat/message")], &huge);
    // Split as legacy stompjs does, at 16 KiB: the cap holds across messages.
    let pieces: Vec<String> = too_big
        .as_bytes()
        .chunks(16 * 1024)
        .map(|piece| String::from_utf8(piece.to_vec()).unwrap())
        .collect();
    let mut client = StompClient::connect(app.port).await;
    for piece in &pieces {
        client.send(piece).await;
    }
    assert_eq!(
        client.expect("ERROR").await.header("message"),
        Some("FRAME_TOO_LARGE")
    );
    assert!(client.expect_close().await.is_some());
    let mut client = StompClient::connect(app.port).await;
    client.send(&too_big).await;
    assert_eq!(
        client.expect("ERROR").await.header("message"),
        Some("FRAME_TOO_LARGE")
    );
    assert!(client.expect_close().await.is_some());

    let malformed = [
        "SEND\ndestination\n\n{}\0",
        "SEND\ncontent-length:1\n\n{}\0",
        "SEND\ncontent-length:-1\n\n{}\0",
        "SEND\ncontent-length:99999999999999999999\n\n{}\0",
        "HELLO\n\n\0",
    ];
    for text in malformed {
        let mut client = StompClient::connect(app.port).await;
        client.send(text).await;
        let error = client.expect("ERROR").await;
        let expected = match text.starts_with("HELLO") {
            true => "UNSUPPORTED",
            false => "MALFORMED_FRAME",
        };
        assert_eq!(error.header("message"), Some(expected), "{text:?}");
        assert!(client.expect_close().await.is_some(), "{text:?}");
    }
    assert_eq!(app.room(&room_id).await["lastSeq"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stomp_reader_gets_an_error_then_1013_and_leaves() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut stalled = open_small_buffer(app.port).await;
    stalled.subscribe("r", &topic(&room_id)).await;
    stalled.chat(enter(&room_id, "stalled")).await;
    stalled.next_event().await;
    let (mut talker, _) = stomp_member(&app, &room_id, "talker").await;

    let text = "x".repeat(4000);
    let mut sent = 0;
    while sent < 3000 {
        talker.talk_and_await(&room_id, "talker", &text, 8).await;
        sent += 8;
        if sent % 128 == 0 && app.room(&room_id).await["memberCount"] == 1 {
            break;
        }
    }
    assert!(sent < 3000, "the stalled reader was never detached");

    let mut last = None;
    let code = loop {
        match stalled.try_next(Duration::from_secs(30)).await {
            Some(Next::Frame(frame)) => last = Some(frame),
            Some(Next::HeartBeat) => {}
            Some(Next::Closed(code)) => break code,
            None => panic!("no close in time"),
        }
    };
    assert_eq!(code, Some(1013));
    let error = last.expect("frames before the close");
    assert_eq!(error.command, "ERROR");
    assert_eq!(error.header("message"), Some("SLOW_CONSUMER"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stomp_session_over_its_frame_rate_is_refused_and_stays_open() {
    use std::num::NonZeroU32;

    let app = spawn_app_with(|s| {
        s.rate_limit = chat::config::Toggle::On;
        s.ws_rate_per_sec = NonZeroU32::new(1).unwrap();
        s.ws_burst = NonZeroU32::new(3).unwrap();
    })
    .await;
    let room_id = app.create_room("general").await;
    let mut alice = StompClient::connect(app.port).await;
    alice.subscribe("errs", "/user/queue/errors").await;

    for i in 0..6 {
        let mut said = talk(&room_id, "alice", "x");
        said["clientMsgId"] = json!(format!("c-{i}"));
        alice.chat(said).await;
    }
    let mut limited = 0;
    for _ in 0..6 {
        let error = alice.next_event().await;
        assert!(error["clientMsgId"].is_string(), "{error}");
        if error["code"] == "RATE_LIMITED" {
            limited += 1;
        }
    }
    assert!(limited >= 3, "{limited} of 6 refused for the rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_stomp_sessions_with_1001_and_stores_their_leave() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let (mut alice, _) = stomp_member(&app, &room_id, "alice").await;

    let data = app.stop().await;

    assert_eq!(alice.expect_close().await, Some(1001));
    let app = crate::helpers::spawn_app_on(data, |_| {}).await;
    let history = app.history(&room_id, "").await;
    assert_eq!(history.last().unwrap()["type"], "LEAVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_room_reaches_its_subscriptions_as_closed_after_its_last_event() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let (mut alice, _) = stomp_member(&app, &room_id, "alice").await;
    alice.chat(talk(&room_id, "alice", "last words")).await;
    assert_eq!(alice.next_event().await["message"], "last words");

    assert_eq!(
        app.delete(&format!("/api/rooms/{room_id}")).await.status(),
        204
    );

    let closed = alice.expect("MESSAGE").await;
    assert_eq!(closed.json(), json!({"type": "CLOSED", "roomId": room_id}));
    assert_eq!(closed.header("seq"), None);
    assert_eq!(closed.header("subscription"), Some("room"));
    assert!(closed.header("message-id").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connect_is_an_error() {
    let app = spawn_app().await;
    let mut client = StompClient::connect(app.port).await;
    client
        .send_frame("CONNECT", &[("accept-version", "1.2")], "")
        .await;
    assert_eq!(
        client.expect("ERROR").await.header("message"),
        Some("ALREADY_CONNECTED")
    );
    assert_eq!(client.expect_close().await, Some(1002));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_read_are_send_bodies_too_and_reach_subscriptions_as_messages_without_seq() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;
    let (mut alice, _) = stomp_member(&app, &room_id, "alice").await;
    bob.next_of_type("ENTER").await;

    alice
        .chat(json!({"type": "TYPING", "roomId": room_id, "sender": "alice"}))
        .await;
    assert_eq!(bob.next_of_type("TYPING").await["sender"], "alice");
    bob.send_json(json!({"type": "TYPING", "roomId": room_id, "sender": "bob"}))
        .await;
    let typing = alice.expect("MESSAGE").await;
    assert_eq!(
        typing.json(),
        json!({"type": "TYPING", "roomId": room_id, "sender": "bob"}),
        "alice's own TYPING did not come back to her"
    );
    assert_eq!(typing.header("subscription"), Some("room"));
    assert_eq!(typing.header("seq"), None);
    assert!(typing.header("message-id").is_some());

    alice
        .chat(json!({"type": "READ", "roomId": room_id, "sender": "alice", "seq": 2}))
        .await;
    let expected = json!({"type": "READ", "roomId": room_id, "sender": "alice", "seq": 2});
    assert_eq!(bob.next_of_type("READ").await, expected);
    let read = alice.expect("MESSAGE").await;
    assert_eq!((read.json(), read.header("seq")), (expected, None));
}

/// A MESSAGE and a RECEIPT, in whichever order they come (a receipt follows the commit, the
/// MESSAGE the fan-out); the receipt's id.
async fn message_and_receipt(client: &mut StompClient) -> (Frame, String) {
    let (mut message, mut receipt) = (None, None);
    while message.is_none() || receipt.is_none() {
        let frame = client.next_frame().await;
        match frame.command.as_str() {
            "MESSAGE" => message = Some(frame),
            "RECEIPT" => receipt = frame.header("receipt-id").map(str::to_owned),
            _ => panic!("unexpected {frame:?}"),
        }
    }
    (message.unwrap(), receipt.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorials_topics_carry_events_only_unless_subscribe_asks_for_notices() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut reader = StompClient::connect(app.port).await;
    let subscriptions = [
        ("own", format!("/topic/rooms/{room_id}"), None, true),
        (
            "own-quiet",
            format!("/topic/rooms/{room_id}"),
            Some("false"),
            false,
        ),
        ("tutorial", format!("/sub/chat/room/{room_id}"), None, false),
        (
            "tutorial-2",
            format!("/topic/chat/room/{room_id}"),
            None,
            false,
        ),
        (
            "tutorial-asks",
            format!("/sub/chat/room/{room_id}"),
            Some("true"),
            true,
        ),
    ];
    for (id, destination, notices, _) in &subscriptions {
        let mut headers = vec![
            ("id", *id),
            ("destination", destination.as_str()),
            ("receipt", *id),
        ];
        headers.extend(notices.map(|notices| ("notices", notices)));
        reader.send_frame("SUBSCRIBE", &headers, "").await;
        reader.expect("RECEIPT").await;
    }
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;
    for _ in &subscriptions {
        assert_eq!(
            reader.next_event().await["type"],
            "ENTER",
            "every one has the events"
        );
    }

    bob.send_json(json!({"type": "TYPING", "roomId": room_id, "sender": "bob"}))
        .await;
    bob.talk(&room_id, "bob", "after typing").await;

    let mut typed = Vec::new();
    let mut talks = 0;
    while talks < subscriptions.len() {
        let message = reader.expect("MESSAGE").await;
        let subscription = message.header("subscription").unwrap().to_owned();
        match message.json()["type"].as_str() {
            Some("TYPING") => typed.push(subscription),
            Some("TALK") => talks += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    typed.sort();
    let mut expected: Vec<String> = subscriptions
        .iter()
        .filter(|(.., notices)| *notices)
        .map(|(id, ..)| id.to_string())
        .collect();
    expected.sort();
    assert_eq!(typed, expected);

    reader
        .send_frame(
            "SUBSCRIBE",
            &[
                ("id", "bad"),
                ("destination", &topic(&room_id)),
                ("notices", "yes"),
            ],
            "",
        )
        .await;
    assert_eq!(
        reader.expect("ERROR").await.header("message"),
        Some("INVALID_MESSAGE")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_send_gets_its_receipt_and_the_first_copy_marked_duplicate() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut bob = app.connect().await;
    bob.join(&room_id, "bob").await;
    let (mut alice, _) = stomp_member(&app, &room_id, "alice").await;
    bob.next_of_type("ENTER").await;
    let mut said = talk(&room_id, "alice", "once");
    said["clientMsgId"] = json!("c-1");
    let send = |receipt: &'static str| {
        let said = said.to_string();
        (
            [("destination", "/pub/chat/message"), ("receipt", receipt)],
            said,
        )
    };

    let (headers, body) = send("first");
    alice.send_frame("SEND", &headers, &body).await;
    let (first, receipt) = message_and_receipt(&mut alice).await;
    assert_eq!(receipt, "first");
    let (headers, body) = send("again");
    alice.send_frame("SEND", &headers, &body).await;

    let (copy, receipt) = message_and_receipt(&mut alice).await;
    assert_eq!(receipt, "again");
    let mut expected = first.json();
    expected["duplicate"] = json!(true);
    assert_eq!(copy.json(), expected);
    assert_eq!(copy.header("seq"), first.header("seq"));
    assert_eq!(copy.header("message-id"), first.header("message-id"));
    assert_eq!(bob.next_of_type("TALK").await, first.json());
    bob.expect_silence(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_errors_are_counted_by_protocol_and_transport() {
    let app = spawn_app().await;
    let _chat = app.connect().await;
    let _chat_sockjs = crate::suite::sockjs::SockJs::open(app.port, "/ws/chat").await;
    let _stomp_sockjs = crate::suite::sockjs::SockJs::open(app.port, "/ws/stomp").await;
    let mut stomp = StompClient::connect(app.port).await;

    app.wait_for_metrics(&[
        "chat_sessions{protocol=\"chat\",transport=\"websocket\"} 1",
        "chat_sessions{protocol=\"chat\",transport=\"sockjs\"} 1",
        "chat_sessions{protocol=\"stomp\",transport=\"websocket\"} 1",
        "chat_sessions{protocol=\"stomp\",transport=\"sockjs\"} 1",
        "chat_connections 4",
    ])
    .await;

    stomp
        .send_frame("SUBSCRIBE", &[("id", "x"), ("destination", "/nowhere")], "")
        .await;
    stomp.expect("ERROR").await;
    assert!(stomp.expect_close().await.is_some());
    app.wait_for_metrics(&[
        "chat_sessions{protocol=\"stomp\",transport=\"websocket\"} 0",
        "chat_errors_total{transport=\"stomp\",code=\"UNKNOWN_DESTINATION\"} 1",
        "chat_connections 3",
    ])
    .await;
}

mod identity {
    use std::net::IpAddr;

    use serde_json::json;

    use super::{enter, talk, topic};
    use crate::helpers::{spawn_app_with, try_upgrade};
    use crate::suite::identity::{
        claims, create_room_as, get_as, identity_mode, mint, token_for, with,
    };
    use crate::suite::stomp_client::{StompClient, open};

    /// A STOMP connection signed in as `name` through CONNECT's headers, subscribed to the
    /// room's errors and events.
    async fn connect_with(port: u16, headers: &[(&str, &str)]) -> StompClient {
        let mut client = open(port, "/ws/stomp", "v12.stomp", &[]).await;
        let mut all = vec![("accept-version", "1.2")];
        all.extend_from_slice(headers);
        client.send_frame("CONNECT", &all, "").await;
        client
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_token_in_the_upgrade_or_in_connect_signs_in_and_names_the_sender() {
        let app = spawn_app_with(identity_mode).await;
        let room_id = create_room_as(&app, &token_for("alice")).await;
        let token = token_for("alice");
        let bearer = format!("Bearer {token}");
        let query = format!("/ws/stomp?access_token={token}");

        let mut ways = Vec::new();
        for (path, header) in [
            ("/ws/stomp", Some(("authorization", bearer.as_str()))),
            (query.as_str(), None),
        ] {
            let headers: Vec<(&str, &str)> = header.into_iter().collect();
            let mut client = open(app.port, path, "", &headers).await;
            client
                .send_frame("CONNECT", &[("accept-version", "1.2")], "")
                .await;
            client.expect("CONNECTED").await;
            ways.push(client);
        }
        for header in [
            ("Authorization", bearer.as_str()),
            ("passcode", &token),
            ("token", &token),
        ] {
            let mut client = connect_with(app.port, &[("login", "ignored"), header]).await;
            client.expect("CONNECTED").await;
            ways.push(client);
        }

        for (i, client) in ways.iter_mut().enumerate() {
            client.subscribe("room", &topic(&room_id)).await;
            let body = json!({"type": "ENTER", "roomId": room_id});
            client.chat(body).await;
            let event = client.next_event().await;
            assert_eq!(
                (&event["type"], &event["sender"]),
                (&json!("ENTER"), &json!("alice")),
                "way {i}"
            );
            client
                .chat(json!({"type": "TALK", "roomId": room_id, "message": format!("way {i}")}))
                .await;
            loop {
                let event = client.next_event().await;
                if event["message"] == format!("way {i}") {
                    assert_eq!(event["sender"], "alice");
                    break;
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_valid_token_in_connect_gets_unauthorized_then_the_close() {
        let app = spawn_app_with(identity_mode).await;
        let room_id = create_room_as(&app, &token_for("alice")).await;
        let expired = mint(&with(claims("user-alice"), "exp", json!(1_000_000)));
        let wrong_key = {
            use jsonwebtoken::{Algorithm, EncodingKey, Header};
            let key = EncodingKey::from_secret(b"some-other-secret-of-32-bytes-xx");
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims("alice"), &key).unwrap()
        };
        let cases: Vec<Vec<(&str, String)>> = vec![
            vec![],
            vec![("passcode", "not-a-jwt".to_owned())],
            vec![("Authorization", format!("Basic {expired}"))],
            vec![("token", expired.clone())],
            vec![("passcode", wrong_key)],
        ];
        for headers in cases {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let mut client = connect_with(app.port, &headers).await;
            let error = client.expect("ERROR").await;
            assert_eq!(error.header("message"), Some("UNAUTHORIZED"), "{headers:?}");
            assert!(client.expect_close().await.is_some());
        }

        // Nothing a refused connection sent was acted on.
        let mut client = connect_with(app.port, &[]).await;
        let body = enter(&room_id, "mallory").to_string();
        client
            .send_frame("SEND", &[("destination", "/pub/chat/message")], &body)
            .await;
        assert_eq!(
            client.expect("ERROR").await.header("message"),
            Some("UNAUTHORIZED")
        );
        let path = format!("/api/rooms/{room_id}");
        let room: serde_json::Value = get_as(&app, &path, &token_for("alice"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(room["lastSeq"], 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_token_at_the_upgrade_is_refused_with_401() {
        let app = spawn_app_with(identity_mode).await;
        let here = IpAddr::from([127, 0, 0, 1]);
        for path in ["/ws/stomp", "/ws/stomp/000/abc/websocket"] {
            let refused = try_upgrade(
                app.port,
                here,
                path,
                &[("authorization", "Bearer not-a-jwt")],
            )
            .await
            .expect_err("refused");
            assert_eq!(
                (refused.status, &refused.problem["code"]),
                (401, &json!("UNAUTHORIZED"))
            );
            let query = format!("{path}?access_token=not-a-jwt");
            let refused = try_upgrade(app.port, here, &query, &[])
                .await
                .expect_err("refused");
            assert_eq!(refused.status, 401);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_under_another_name_is_refused() {
        let app = spawn_app_with(identity_mode).await;
        let room_id = create_room_as(&app, &token_for("alice")).await;
        let token = token_for("alice");
        let mut client = connect_with(app.port, &[("passcode", &token)]).await;
        client.expect("CONNECTED").await;
        client.subscribe("errs", "/user/queue/errors").await;

        client.chat(enter(&room_id, "mallory")).await;
        assert_eq!(client.next_event().await["code"], "SENDER_MISMATCH");
        client.chat(enter(&room_id, "alice")).await;
        client.chat(talk(&room_id, "mallory", "spoofed")).await;
        assert_eq!(client.next_event().await["code"], "SENDER_MISMATCH");
    }
}
