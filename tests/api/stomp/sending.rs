//! SEND doing what the same frame does on `/ws/chat`: destinations, receipts after storage, refusals, transactions, notices, resends.

use super::*;

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
async fn changes_are_sends_too_and_arrive_as_messages_with_a_seq() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let (mut alice, _) = stomp_member(&app, &room_id, "alice").await;
    alice.chat(talk(&room_id, "alice", "hello")).await;
    let said = alice.next_event().await;
    alice.subscribe("errs", "/user/queue/errors").await;

    let target = said["seq"].clone();
    for (kind, fields) in [
        (
            "EDIT",
            json!({"targetSeq": target, "message": "hello, world"}),
        ),
        ("REACT", json!({"targetSeq": target, "emoji": "👍"})),
        ("UNREACT", json!({"targetSeq": target, "emoji": "👍"})),
        ("DELETE", json!({"targetSeq": target})),
    ] {
        let mut body = json!({"type": kind, "roomId": room_id, "sender": "alice"});
        for (name, value) in fields.as_object().unwrap() {
            body[name] = value.clone();
        }
        alice.chat(body).await;
        let message = alice.expect("MESSAGE").await;
        let event = message.json();
        assert_eq!(event["type"], kind);
        assert_eq!(event["targetSeq"], target);
        assert_eq!(
            message.header("seq"),
            Some(event["seq"].to_string().as_str())
        );
    }
    let again =
        json!({"type": "DELETE", "roomId": room_id, "sender": "alice", "targetSeq": target});
    alice.chat(again).await;
    let refusal = alice.expect("MESSAGE").await;
    assert_eq!(refusal.header("destination"), Some("/user/queue/errors"));
    assert_eq!(refusal.json()["code"], "TARGET_NOT_FOUND");
}
