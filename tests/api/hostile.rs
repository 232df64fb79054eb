//! Hostile and broken clients: floods, drips, pipelined frames racing each other, readers that
//! stop reading. Each test drives over the wire what an attacker (or a buggy client) would,
//! and checks that the contract still holds for everyone else.

use std::time::{Duration, Instant};

use chat::config::{Settings, Toggle};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, WAIT, WsClient, spawn_app, spawn_app_with};
use crate::suite::rate_limits::bursts_of_3_then_1_frame_a_second;
use crate::suite::stomp_client::{Next, StompClient, frame, open};

/// Rate limits at their defaults (they are off in tests unless asked for).
fn default_limits(settings: &mut Settings) {
    settings.rate_limit = Toggle::On;
}

/// Sends a ping and waits for its pong, answering nothing else; the text frames that come
/// meanwhile are counted.
async fn ping_pong(client: &mut WsClient, payload: &[u8]) -> Result<usize, String> {
    client
        .ws
        .send(Message::Ping(payload.to_vec().into()))
        .await
        .expect("ping");
    let mut texts = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, client.ws.next()).await {
            Err(_) => return Err(format!("no pong in {WAIT:?} ({texts} text frames)")),
            Ok(Some(Ok(Message::Pong(echoed)))) if echoed[..] == *payload => return Ok(texts),
            Ok(Some(Ok(Message::Text(_)))) => texts += 1,
            Ok(Some(Ok(_))) => {}
            Ok(other) => return Err(format!("the connection ended: {other:?}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_is_answered_even_past_the_frame_rate_limit() {
    let app = spawn_app_with(default_limits).await;
    let mut client = app.connect().await;
    for round in 0..8u8 {
        for _ in 0..43 {
            client.send_text("not json").await;
        }
        let mut codes = Vec::new();
        for _ in 0..43 {
            let error = client.next_of_type("ERROR").await;
            codes.push(error["code"].as_str().unwrap_or_default().to_owned());
        }
        assert!(
            codes
                .iter()
                .all(|code| code == "INVALID_JSON" || code == "RATE_LIMITED"),
            "{codes:?}"
        );
        if let Err(why) = ping_pong(&mut client, &[round]).await {
            panic!("round {round}: {why}");
        }
    }
    client.send_text("not json").await;
    let last = client.next_of_type("ERROR").await;
    assert!(last["code"].is_string(), "the session still reads: {last}");
}

/// A room entered with `"echo": false` gets an `ACK` for each of its TALKs and never the
/// full copy, even when a READ queued just before the TALK is stored in the same batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_off_gets_only_the_ack_when_a_read_shares_the_talks_batch() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice
        .send_json(json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "echo": false}))
        .await;
    let enter = alice.next_of_type("ENTER").await;

    for round in 0..5u32 {
        let lock = app.hold_write_lock().await;
        alice
            .talk_with_id(&room_id, "alice", "held", &format!("held-{round}"))
            .await;
        app.wait_for_writer_to_take(2 + 2 * round).await;
        alice
            .send_json(
                json!({"type": "READ", "roomId": room_id, "sender": "alice", "seq": enter["seq"]}),
            )
            .await;
        alice
            .talk_with_id(&room_id, "alice", "after a read", &format!("c-{round}"))
            .await;
        app.wait_for_writer_queue(3 + 2 * round).await;
        lock.release().await;

        let mut acks = Vec::new();
        while acks.len() < 2 {
            let frame = alice.next_json().await;
            match frame["type"].as_str() {
                Some("ACK") => acks.push(frame["clientMsgId"].clone()),
                Some("READ") => {}
                _ => panic!("round {round}: only ACKs and READ notices, got {frame}"),
            }
        }
        assert_eq!(
            acks,
            [json!(format!("held-{round}")), json!(format!("c-{round}"))]
        );
    }
    alice.expect_silence(Duration::from_millis(300)).await;
}

/// The slowest of `times` requests to `/healthz`.
async fn slowest_healthz(app: &TestApp, times: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..times {
        let started = Instant::now();
        assert_eq!(app.get("/healthz").await.status(), 200);
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

/// The slowest of `times` round trips of a TALK, each on a connection of its own (so that
/// they land on every worker).
async fn slowest_round_trip(app: &TestApp, room_id: &str, times: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in 0..times {
        let mut client = app.connect().await;
        client.join(room_id, &format!("probe-{i}")).await;
        let started = Instant::now();
        let probe = format!("probe-{i}");
        client.talk(room_id, &probe, "are you there").await;
        // The previous probe's LEAVE may be stored after this one's ENTER: skip to the TALK.
        while client.next_json().await["sender"] != probe.as_str() {}
        slowest = slowest.max(started.elapsed());
        client.close().await;
    }
    slowest
}

/// A STOMP frame's head dripped one header line per WebSocket message: decoding is linear in
/// what arrives, so nobody else waits for it, whatever the limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stomp_head_dripped_a_line_a_message_stalls_no_one() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut drip = open(app.port, "/ws/stomp", "v12.stomp", &[]).await;
    drip.ws.feed(Message::text("SEND\n")).await.expect("feed");
    for _ in 0..20_000 {
        drip.ws.feed(Message::text("a:\n")).await.expect("feed");
    }
    let dripping = tokio::spawn(async move {
        drip.ws.flush().await.expect("flush");
        drip.send("\n\0").await;
        drip
    });
    let healthz = slowest_healthz(&app, 20).await;
    let round_trip = slowest_round_trip(&app, &room_id, 10).await;
    let mut drip = dripping.await.expect("the drip was sent");

    let error = drip.expect("ERROR").await;
    assert_eq!(
        error.header("message"),
        Some("NOT_CONNECTED"),
        "the whole head was read: {error:?}"
    );
    // Here 2-8 ms; seconds before the decoder was linear. The bound leaves room for a CI
    // machine whose two cores other tests keep busy.
    let bound = Duration::from_millis(250);
    assert!(
        healthz < bound && round_trip < bound,
        "during the drip: /healthz took up to {healthz:?}, a TALK's round trip {round_trip:?}"
    );
}

/// Every WebSocket message counts against the frame limit, a piece of a STOMP frame too: a
/// drip past the limit gets ERROR `RATE_LIMITED`, then the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stomp_drip_past_the_frame_limit_is_cut_off() {
    let app = spawn_app_with(default_limits).await;
    let mut drip = open(app.port, "/ws/stomp", "v12.stomp", &[]).await;
    drip.ws.feed(Message::text("SEND\n")).await.expect("feed");
    for _ in 0..400 {
        drip.ws.feed(Message::text("a:\n")).await.expect("feed");
    }
    drip.ws.flush().await.expect("flush");
    let error = drip.expect("ERROR").await;
    assert_eq!(error.header("message"), Some("RATE_LIMITED"), "{error:?}");
    assert_eq!(drip.expect_close().await, Some(1002));
}

/// SockJS messages that carry no frame (`[]`) count too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_sockjs_messages_count_against_the_frame_limit() {
    let app = spawn_app_with(bursts_of_3_then_1_frame_a_second).await;
    let url = format!("ws://127.0.0.1:{}/ws/chat/000/empty/websocket", app.port);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("opens");
    assert_eq!(ws.next().await.expect("o").expect("o"), Message::text("o"));
    for _ in 0..6 {
        ws.send(Message::text("[]")).await.expect("send");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let limited = loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a refusal in time");
        if let Some(Ok(Message::Text(text))) = message
            && text.contains("RATE_LIMITED")
        {
            break text;
        }
    };
    assert!(limited.starts_with("a["), "{limited}");
}

/// Over the limit, no STOMP frame takes effect: SUBSCRIBE, UNSUBSCRIBE, ACK and DISCONNECT
/// are refused on the errors queue like a SEND, with no receipt, and the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_stomp_every_frame_over_the_limit_is_refused_before_it_takes_effect() {
    let app = spawn_app_with(bursts_of_3_then_1_frame_a_second).await;
    let room_id = app.create_room("general").await;
    let mut client = StompClient::connect(app.port).await;
    client.subscribe("errors", "/user/queue/errors").await;
    let topic = format!("/topic/rooms/{room_id}");
    let mut flood = String::new();
    for i in 0..20 {
        let id = format!("s-{i}");
        flood.push_str(&frame(
            "SUBSCRIBE",
            &[("id", &id), ("destination", &topic), ("receipt", &id)],
            "",
        ));
        flood.push_str(&frame(
            "UNSUBSCRIBE",
            &[("id", &id), ("receipt", &format!("u-{i}"))],
            "",
        ));
    }
    flood.push_str(&frame("ACK", &[("id", "x"), ("receipt", "ack")], ""));
    flood.push_str(&frame("DISCONNECT", &[("receipt", "bye")], ""));
    client.send(&flood).await;

    let (mut receipts, mut refused) = (Vec::new(), Vec::new());
    while receipts.len() + refused.len() < 42 {
        let frame = client.next_frame().await;
        match frame.command.as_str() {
            "RECEIPT" => receipts.push(frame.header("receipt-id").unwrap_or_default().to_owned()),
            "MESSAGE" => {
                let error = frame.json();
                assert_eq!(error["code"], "RATE_LIMITED", "{error}");
                refused.push(error);
            }
            _ => panic!("unexpected {frame:?}"),
        }
    }
    assert!(
        receipts.len() <= 1 && !receipts.contains(&"bye".to_owned()),
        "one frame left in the burst at most: {receipts:?}"
    );
    assert!(
        refused.iter().any(|error| error["message"].is_string()),
        "{refused:?}"
    );

    app.wait_for_scrape("the flood refused", |scrape| {
        scrape.value("chat_errors_total{transport=\"stomp\",code=\"RATE_LIMITED\"}") >= 41.0
    })
    .await;
    let room = app.room(&room_id).await;
    assert_eq!(room["memberCount"], 0);
    client
        .send_frame("SEND", &[("destination", "/pub/chat/message")], "{}")
        .await;
    let still_open = client.next_frame().await;
    assert_eq!(still_open.command, "MESSAGE", "{still_open:?}");
}

/// A STOMP client that never sends CONNECT is told so and closed, in the client timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stomp_connection_without_connect_is_closed_in_the_client_timeout() {
    let app = spawn_app_with(|s| {
        s.ping_interval_ms = 200;
        s.client_timeout_ms = 1_000;
    })
    .await;
    let mut idle = open(app.port, "/ws/stomp", "v12.stomp", &[]).await;
    let started = Instant::now();
    while started.elapsed() < WAIT {
        idle.send("\n").await;
        if let Some(Next::Frame(error)) = idle.try_next(Duration::from_millis(100)).await {
            assert_eq!(error.header("message"), Some("TIMEOUT"), "{error:?}");
            assert!(started.elapsed() >= Duration::from_millis(900));
            assert_eq!(idle.expect_close().await, Some(1002));
            return;
        }
    }
    panic!("no ERROR after {:?} of heart-beats", started.elapsed());
}

/// Frames that share a WebSocket message are read one after the other, each once the one
/// before it took effect: a CONNECT that signs in, then a SEND that leaves its sender to the
/// identity, then a SUBSCRIBE, all in one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_in_one_message_each_see_what_the_frames_before_them_did() {
    use crate::suite::identity::{create_room_as, identity_mode, token_for};

    let app = spawn_app_with(identity_mode).await;
    let token = token_for("alice");
    let room_id = create_room_as(&app, &token).await;
    let mut client = open(app.port, "/ws/stomp", "v12.stomp", &[]).await;
    let bearer = format!("Bearer {token}");
    let topic = format!("/topic/rooms/{room_id}");
    let mut message = frame(
        "CONNECT",
        &[("accept-version", "1.2"), ("Authorization", &bearer)],
        "",
    );
    message.push_str(&frame(
        "SUBSCRIBE",
        &[("id", "room"), ("destination", &topic), ("receipt", "sub")],
        "",
    ));
    let destination = format!("/app/rooms/{room_id}");
    for body in [
        json!({"type": "ENTER"}),
        json!({"type": "TALK", "message": "hi"}),
    ] {
        message.push_str(&frame(
            "SEND",
            &[("destination", &destination)],
            &body.to_string(),
        ));
    }
    client.send(&message).await;

    client.expect("CONNECTED").await;
    assert_eq!(
        client.expect("RECEIPT").await.header("receipt-id"),
        Some("sub")
    );
    let enter = client.next_event().await;
    let talk = client.next_event().await;
    assert_eq!(
        [
            &enter["type"],
            &enter["sender"],
            &talk["type"],
            &talk["sender"]
        ],
        ["ENTER", "alice", "TALK", "alice"]
    );
}

/// `"echo": false` belongs to `/ws/chat`: on STOMP every message is a STOMP frame, the
/// RECEIPT acknowledges a SEND, and the subscription gets the TALK (and a resend's first
/// copy) in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_false_on_stomp_changes_nothing_and_every_message_is_a_stomp_frame() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut client = StompClient::connect(app.port).await;
    client
        .subscribe("room", &format!("/topic/rooms/{room_id}"))
        .await;
    client
        .chat(json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "echo": false}))
        .await;
    assert_eq!(client.next_event().await["type"], "ENTER");
    let talk = json!({"type": "TALK", "roomId": room_id, "sender": "alice", "message": "hi", "clientMsgId": "c-1"});
    for (receipt, duplicate) in [("first", Value::Null), ("again", json!(true))] {
        client
            .send_frame(
                "SEND",
                &[("destination", "/pub/chat/message"), ("receipt", receipt)],
                &talk.to_string(),
            )
            .await;
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let frame = client.next_frame().await;
            match frame.command.as_str() {
                "RECEIPT" => seen.push(frame.header("receipt-id").map(str::to_owned)),
                "MESSAGE" => {
                    let event = frame.json();
                    assert_eq!(
                        (&event["type"], &event["clientMsgId"], &event["duplicate"]),
                        (&json!("TALK"), &json!("c-1"), &duplicate),
                        "{event}"
                    );
                    seen.push(None);
                }
                _ => panic!("unexpected {frame:?}"),
            }
        }
        assert!(seen.contains(&Some(receipt.to_owned())), "{seen:?}");
    }
}

/// One SockJS message of thousands of empty messages asks for thousands of ERRORs: what one
/// message may get back is bounded, and past it the connection is closed (1008), with the
/// rate limit or without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_cannot_make_the_server_write_many_times_its_size() {
    for limits in [Toggle::Off, Toggle::On] {
        let app = spawn_app_with(|s| s.rate_limit = limits).await;
        let url = format!("ws://127.0.0.1:{}/ws/chat/000/flood/websocket", app.port);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("opens");
        let entries = vec!["\"\""; 21_000].join(",");
        let sent = format!("[{entries}]");
        assert!(sent.len() < 64 * 1024);
        ws.send(Message::text(sent.clone())).await.expect("send");
        let mut received = 0;
        let closed = loop {
            let message = tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("the server answers in time");
            match message {
                Some(Ok(Message::Text(text))) if text.starts_with("c[") => break text,
                Some(Ok(Message::Text(text))) => received += text.len(),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    panic!("closed without SockJS's c[…] after {received} bytes")
                }
                Some(Ok(_)) => {}
            }
        };
        assert!(closed.starts_with("c[1008,"), "{closed}");
        assert!(
            received < 8 * sent.len(),
            "{limits:?}: {received} bytes back for a message of {}",
            sent.len()
        );
    }
}

/// A client that stops reading is dropped once a write has waited the client timeout, even
/// in a quiet room where no event would fill its queue: here a replay it asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_a_replay_is_dropped() {
    let app = spawn_app_with(|s| {
        s.ping_interval_ms = 300;
        s.client_timeout_ms = 1_000;
    })
    .await;
    let room_id = app.create_room("quiet").await;
    app.fill_room(&room_id, 80_000).await;
    let mut stalled = app.connect_small_buffer().await;
    stalled.enter_after(&room_id, "stalled", 0).await;
    app.wait_for_member_count(&room_id, 1).await;
    app.wait_for_member_count(&room_id, 0).await;
    let history = app.history(&room_id, "").await;
    let last = history.last().expect("events");
    assert_eq!(
        (&last["type"], &last["sender"]),
        (&json!("LEAVE"), &json!("stalled"))
    );
}

/// ENTER with `lastSeq: 0` into a busy room, LEAVE during its replay and ENTER again, all
/// pipelined: the replay runs up to the LEAVE, the second ENTER starts at its own event, and
/// nothing comes twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entering_again_during_a_replay_delivers_nothing_twice() {
    let app = spawn_app().await;
    let room_id = app.create_room("busy").await;
    app.fill_room(&room_id, 3_000).await;
    let mut client = app.connect().await;
    for frame in [
        json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "lastSeq": 0}),
        json!({"type": "LEAVE", "roomId": room_id, "sender": "alice"}),
        json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "clientMsgId": "again"}),
    ] {
        client
            .ws
            .feed(Message::text(frame.to_string()))
            .await
            .expect("feed");
    }
    client.ws.flush().await.expect("flush");

    let mut seqs = Vec::new();
    loop {
        let event = client.next_json().await;
        seqs.push(event["seq"].as_i64().expect("an event with a seq"));
        if event["clientMsgId"] == "again" {
            break;
        }
    }
    let expected: Vec<i64> = (1..=3_001).chain([3_003]).collect();
    assert_eq!(seqs.len(), expected.len());
    assert!(
        seqs == expected,
        "first differs at {:?}",
        seqs.iter().zip(&expected).position(|(a, b)| a != b)
    );
    client.expect_silence(Duration::from_millis(200)).await;
}
