use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_frame_closes_the_connection_with_1003_and_broadcasts_leave() {
    let app = spawn_app().await;
    let (_, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    bob.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();

    assert_eq!(bob.expect_close().await, 1003);
    let leave = alice.next_of_type("LEAVE").await;
    assert_eq!(leave["sender"], "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_size_limit_closes_the_connection_with_1009() {
    let app = spawn_app_with(|s| s.max_frame_bytes = 1024).await;
    let mut alice = app.connect().await;

    alice.send_text("x".repeat(2000)).await;

    assert_eq!(alice.expect_close().await, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_size_limit_is_64_kib() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;

    let padding = "x".repeat(60 * 1024);
    let within = serde_json::json!({"type": "TALK", "roomId": room_id, "sender": "alice", "message": "fits", "pad": padding});
    alice.send_json(within).await;
    assert_eq!(alice.next_of_type("TALK").await["message"], "fits");

    alice.send_text("x".repeat(64 * 1024 + 1)).await;
    assert_eq!(alice.expect_close().await, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_answered_and_broadcasts_leave() {
    let app = spawn_app().await;
    let (_, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;

    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    bob.ws.send(Message::Close(Some(frame))).await.unwrap();

    assert_eq!(bob.expect_close().await, 1000);
    alice.next_of_type("LEAVE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_answering_pings_is_dropped() {
    let app = spawn_app_with(|s| {
        s.ping_interval_ms = 100;
        s.client_timeout_ms = 1500;
    })
    .await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    let mut silent = app.connect().await;
    alice.join(&room_id, "alice").await;
    silent.join(&room_id, "silent").await;
    alice.next_of_type("ENTER").await;

    // alice keeps reading (and so answering pings) while `silent` reads nothing.
    let leave = alice.next_of_type("LEAVE").await;

    assert_eq!(leave["sender"], "silent");
    assert_eq!(silent.expect_close().await, 1008);
    alice.talk(&room_id, "alice", "I answered my pings").await;
    alice.next_of_type("TALK").await;
    app.wait_for_member_count(&room_id, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_frame_that_is_not_utf8_closes_the_connection_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::{
        Frame, FrameHeader,
        coding::{Data, OpCode},
    };

    let app = spawn_app().await;
    let mut alice = app.connect().await;
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    let frame = Frame::from_payload(header, vec![0xff, 0xfe, 0xfd].into());

    alice.ws.send(Message::Frame(frame)).await.unwrap();

    assert_eq!(alice.expect_close().await, 1007);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_request_to_the_socket_path_is_invalid_request() {
    let app = spawn_app().await;
    let response = app.get("/ws/chat").await;
    crate::helpers::assert_problem(response, 400, "INVALID_REQUEST").await;
}

/// Opens a WebSocket by hand on a plain TCP stream, so the test sees exactly when the server
/// closes the TCP connection.
async fn raw_upgrade(port: u16) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_closing_handshake_the_server_closes_the_tcp_connection_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let mut tcp = raw_upgrade(app.port).await;

    // A masked close frame with code 1000 (RFC 6455 5.5.1), as a client sends it.
    let mask = [1, 2, 3, 4];
    let code = 1000u16.to_be_bytes();
    let close = [0x88, 0x82, 1, 2, 3, 4, code[0] ^ mask[0], code[1] ^ mask[1]];
    tcp.write_all(&close).await.unwrap();
    let closed_at = std::time::Instant::now();
    let mut reply = [0; 4];
    tcp.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, [0x88, 0x02, 0x03, 0xe8], "the server answers 1000");

    let mut rest = [0; 16];
    let eof = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut rest)).await;
    let waited = closed_at.elapsed();
    assert!(
        matches!(eof, Ok(Ok(0))),
        "the server should close the TCP connection (RFC 6455 7.1.1): {eof:?} after {waited:?}"
    );
    assert!(
        waited < std::time::Duration::from_secs(1),
        "closed after {waited:?}"
    );
}

/// A storm of clients reconnecting at once (after a restart) must not overflow the queue of
/// connections waiting to be accepted: an overflowed SYN waits a second for its retransmission.
/// The queue's length is the listening socket's Send-Q in `ss` (iproute2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_queues_thousands_of_connections_waiting_to_be_accepted() {
    let app = crate::helpers::spawn_app().await;
    let filter = format!("sport = :{}", app.port);
    let output = std::process::Command::new("ss")
        .args(["-ltnH", &filter])
        .output()
        .expect("this test reads the listen backlog with `ss` (Debian's iproute2 package)");
    let listing = String::from_utf8_lossy(&output.stdout);
    let backlog: u32 = listing
        .split_whitespace()
        .nth(2)
        .and_then(|field| field.parse().ok())
        .unwrap_or_else(|| panic!("no listening socket on {} in `ss`: {listing:?}", app.port));
    let capped_by_kernel = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .unwrap_or(4096);
    assert!(
        backlog >= 4096.min(capped_by_kernel),
        "listen backlog {backlog}"
    );
}
