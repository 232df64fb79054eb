//! STOMP in identity mode: a token in the upgrade or in CONNECT signs in and names the sender.

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
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
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
