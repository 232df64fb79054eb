//! Arbitrary frames, to the parser and to a live socket: no panic, documented errors only.

use std::time::Duration;

use chat::ws::protocol::parse;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

const WS_CODES: [&str; 8] = [
    "INVALID_JSON",
    "INVALID_MESSAGE",
    "ROOM_NOT_FOUND",
    "NOT_IN_ROOM",
    "SENDER_MISMATCH",
    "MESSAGE_TOO_LONG",
    "RATE_LIMITED",
    "UNAVAILABLE",
];

fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        Just(Value::from("ENTER")),
        Just(Value::from("TALK")),
        Just(Value::from("LEAVE")),
        Just(Value::from("3f2c5a8e-8d2b-4a63-9a43-3c0c8a1d2e4f")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::hash_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Frames shaped like client frames, with each field drawn from anything JSON can hold.
fn frame_like() -> impl Strategy<Value = String> {
    let field = || prop::option::of(json_value());
    (field(), field(), field(), field(), field(), field()).prop_map(
        |(kind, room, sender, message, id, last)| {
            let mut frame = serde_json::Map::new();
            for (key, value) in [
                ("type", kind),
                ("roomId", room),
                ("sender", sender),
                ("message", message),
                ("clientMsgId", id),
                ("lastSeq", last),
            ] {
                if let Some(value) = value {
                    frame.insert(key.to_owned(), value);
                }
            }
            Value::Object(frame).to_string()
        },
    )
}

fn any_frame() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        ".{0,64}",
        frame_like(),
        json_value().prop_map(|v| v.to_string())
    ]
}

proptest! {
    #[test]
    fn the_parser_never_panics_and_refuses_with_documented_codes(text in any_frame()) {
        if let Err(refusal) = parse(&text) {
            prop_assert!(WS_CODES.contains(&refusal.error.code()));
            prop_assert!(refusal.frame().is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_socket_answers_arbitrary_frames_with_documented_frames_only() {
    let app = spawn_app().await;
    let room_id = app.create_room("fuzz").await;
    let mut client = app.connect().await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = any_frame();
    for _ in 0..300 {
        let text = strategy.new_tree(&mut runner).expect("a frame").current();
        client.send_text(text).await;
    }
    client.enter(&room_id, "sentinel").await;
    client.send_json(json!({"type": "TALK", "roomId": room_id, "sender": "sentinel", "message": "end", "clientMsgId": "sentinel"})).await;

    loop {
        let frame = client
            .try_next_json(Duration::from_secs(10))
            .await
            .expect("the sentinel arrives");
        let kind = frame["type"].as_str().expect("every frame has a type");
        match kind {
            "ERROR" => assert!(
                WS_CODES.contains(&frame["code"].as_str().unwrap()),
                "{frame}"
            ),
            "ENTER" | "TALK" | "LEAVE" | "CLOSED" => {}
            other => panic!("undocumented frame type {other}: {frame}"),
        }
        if frame["clientMsgId"] == "sentinel" && kind == "TALK" {
            break;
        }
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
}
