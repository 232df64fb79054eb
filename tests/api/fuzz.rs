//! Arbitrary frames, to the parser and to a live socket: no panic, documented errors only.

use std::time::Duration;

use chat::ws::dialect::chat::parse;
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

/// Frames a real client could send to a real room, each field at a value a hostile client
/// would pick: its extremes, the wrong type, or missing.
fn contract_frame(room_id: String) -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        Just(json!("ENTER")),
        Just(json!("TALK")),
        Just(json!("LEAVE")),
        json_value()
    ];
    let room = prop_oneof![
        3 => Just(json!(room_id)),
        1 => Just(json!(uuid::Uuid::nil().to_string())),
        1 => json_value(),
    ];
    let sender = prop_oneof![
        Just(json!("alice")),
        Just(json!(" alice ")),
        Just(json!("bob")),
        json_value()
    ];
    let message = prop_oneof![
        Just(json!("hi")),
        Just(json!("é".repeat(4000))),
        Just(json!("x".repeat(4001))),
        Just(json!("")),
        json_value(),
    ];
    let last_seq = prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(3)),
        Just(json!(i64::MAX)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1.5)),
        json_value(),
    ];
    let id = prop_oneof![
        Just(json!("c-1")),
        Just(json!("i".repeat(128))),
        Just(json!("i".repeat(129))),
        json_value()
    ];
    let fields = (
        kind,
        room,
        sender,
        prop::option::of(message),
        prop::option::of(last_seq),
        prop::option::of(id),
    );
    fields.prop_map(|(kind, room, sender, message, last_seq, id)| {
        let mut frame = json!({"type": kind, "roomId": room, "sender": sender});
        for (key, value) in [
            ("message", message),
            ("lastSeq", last_seq),
            ("clientMsgId", id),
        ] {
            if let Some(value) = value {
                frame[key] = value;
            }
        }
        frame.to_string()
    })
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
    fn the_parser_never_panics_and_refuses_with_documented_error_frames(text in any_frame()) {
        let Err(refusal) = parse(&text) else { return Ok(()) };
        let frame: Value = serde_json::from_str(&refusal.frame()).expect("an ERROR frame is JSON");
        prop_assert_eq!(&frame["type"], "ERROR");
        prop_assert!(WS_CODES.contains(&refusal.error.code()));
        prop_assert_eq!(&frame["code"], refusal.error.code());
        prop_assert!(frame["message"].as_str().is_some_and(|m| !m.is_empty()));
        // What it echoes is what the frame carried, as long as the frame was a JSON object.
        let sent: Option<Value> = serde_json::from_str(&text).ok();
        for key in ["roomId", "clientMsgId"] {
            let carried = sent.as_ref().and_then(|v| v.get(key)).and_then(Value::as_str);
            prop_assert_eq!(frame.get(key).and_then(Value::as_str), carried, "{} of {}", key, text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_socket_answers_arbitrary_frames_with_documented_frames_only() {
    let app = spawn_app().await;
    let room_id = app.create_room("fuzz").await;
    let mut client = app.connect().await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop_oneof![1 => any_frame(), 3 => contract_frame(room_id.clone())];
    let mut entered = false;
    for _ in 0..600 {
        let text = strategy.new_tree(&mut runner).expect("a frame").current();
        client.send_text(text).await;
    }
    let sentinel = json!({"type": "TALK", "roomId": uuid::Uuid::new_v4(), "sender": "s", "message": "m", "clientMsgId": "sentinel"});
    client.send_json(sentinel).await;

    loop {
        let frame = client
            .try_next_json(Duration::from_secs(10))
            .await
            .expect("the sentinel's refusal arrives");
        let kind = frame["type"].as_str().expect("every frame has a type");
        match kind {
            "ERROR" => assert!(
                WS_CODES.contains(&frame["code"].as_str().unwrap()),
                "{frame}"
            ),
            "ENTER" | "TALK" | "LEAVE" | "CLOSED" => {
                assert_eq!(frame["roomId"], room_id.as_str(), "{frame}");
                entered |= kind == "ENTER";
            }
            other => panic!("undocumented frame type {other}: {frame}"),
        }
        if frame["clientMsgId"] == "sentinel" {
            assert_eq!(frame["code"], "NOT_IN_ROOM");
            break;
        }
    }
    assert!(
        entered,
        "the fuzz never got into the room, so it tried no in-room path"
    );
    drop(client);

    app.wait_for_member_count(&room_id, 0).await;
    let history = app.history(&room_id, "?afterSeq=0&limit=500").await;
    let seqs: Vec<u64> = history.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free"
    );
    assert_eq!(app.room(&room_id).await["lastSeq"], seqs.len() as u64);
    assert_eq!(
        history.last().unwrap()["type"],
        "LEAVE",
        "the fuzzing session left"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
}
