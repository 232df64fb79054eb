//! STOMP framing: several frames per message and one over several, binary, CRLF, content-length, escapes, limits.

use super::*;

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
