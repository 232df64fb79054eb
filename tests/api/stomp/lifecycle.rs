//! How STOMP sessions end and are counted: dropped connections, slow readers, the frame rate, shutdown, metrics.

use super::*;

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
