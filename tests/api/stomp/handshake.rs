//! STOMP's handshake: subprotocols, CONNECT and its versions, frames before it, and the tutorials' whole flow.

use super::*;

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
