//! Subscribing to a room: its topic spellings, resume with `last-seq`, unknown rooms and ids, UNSUBSCRIBE, notices, deletion.

use super::*;

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
