use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, spawn_app};

/// Reads events until one with `seq == last`, returning their seqs.
async fn read_through(client: &mut WsClient, last: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        let event = client.next_json().await;
        let seq = event["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("not an event: {event}"));
        seqs.push(seq);
        if seq == last {
            return seqs;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enter_with_last_seq_replays_missed_events_in_order_then_goes_live() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    let mut bob = app.connect().await;
    let seen = bob.join(&room_id, "bob").await["seq"].as_u64().unwrap();
    drop(bob);
    alice.next_of_type("ENTER").await;
    alice.next_of_type("LEAVE").await;
    for i in 0..5 {
        alice.talk(&room_id, "alice", &format!("missed {i}")).await;
        alice.next_of_type("TALK").await;
    }

    let mut bob = app.connect().await;
    bob.enter_after(&room_id, "bob", seen).await;

    let leave = bob.next_of_type("LEAVE").await;
    assert_eq!(leave["seq"], seen + 1);
    for i in 0..5 {
        let talk = bob.next_of_type("TALK").await;
        assert_eq!(talk["message"], format!("missed {i}"));
        assert_eq!(talk["seq"], seen + 2 + i);
    }
    let enter = bob.next_of_type("ENTER").await;
    assert_eq!(enter["seq"], seen + 7);
    alice.talk(&room_id, "alice", "live").await;
    let live = bob.next_of_type("TALK").await;
    assert_eq!(
        (live["message"].as_str(), live["seq"].as_u64()),
        (Some("live"), Some(seen + 8))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_while_the_room_is_busy_has_no_gap_and_no_duplicate() {
    let app = spawn_app().await;
    let room_id = app.create_room("busy").await;
    let mut talker = app.connect().await;
    talker.join(&room_id, "talker").await;
    let talking_room = room_id.clone();
    let talking = tokio::spawn(async move {
        for i in 0..600 {
            talker.talk(&talking_room, "talker", &format!("t{i}")).await;
            if i % 4 == 3 {
                for _ in 0..4 {
                    talker.next_json().await;
                }
            }
        }
        talker
    });

    let mut seen: Vec<u64> = Vec::new();
    let mut last = 1;
    for reconnect in 0..12 {
        let mut bob = app.connect().await;
        bob.enter_after(&room_id, "bob", last).await;
        for _ in 0..(10 + reconnect * 5) {
            let event: Value = bob.next_json().await;
            last = event["seq"].as_u64().unwrap();
            seen.push(last);
        }
        drop(bob);
    }
    let _talker = talking.await.unwrap();
    let mut bob = app.connect().await;
    // Its echoed ENTER ends the replay: everything stored before it comes first.
    bob.send_json(json!({"type": "ENTER", "roomId": room_id, "sender": "bob", "lastSeq": last, "clientMsgId": "back"}))
        .await;
    loop {
        let event = bob.next_json().await;
        seen.push(event["seq"].as_u64().unwrap());
        if event["clientMsgId"] == "back" {
            break;
        }
    }

    let expected: Vec<u64> = (2..=*seen.last().unwrap()).collect();
    assert_eq!(seen, expected, "every event exactly once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_room_already_entered_replays_without_a_new_enter() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    for i in 0..3 {
        alice.talk(&room_id, "alice", &format!("m{i}")).await;
        alice.next_of_type("TALK").await;
    }

    alice.enter_after(&room_id, "alice", 2).await;

    assert_eq!(read_through(&mut alice, 4).await, vec![3, 4]);
    alice.talk(&room_id, "alice", "next").await;
    let next = alice.next_of_type("TALK").await;
    assert_eq!(next["seq"], 5, "no ENTER was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_zero_replays_the_whole_history() {
    let app = spawn_app().await;
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    for chunk in 0..12 {
        for i in 0..100 {
            alice
                .talk(&room_id, "alice", &format!("m{chunk}-{i}"))
                .await;
        }
        for _ in 0..100 {
            alice.next_of_type("TALK").await;
        }
    }

    let mut bob = app.connect().await;
    bob.enter_after(&room_id, "bob", 0).await;

    let seqs = read_through(&mut bob, 1202).await;
    assert_eq!(seqs, (1..=1202).collect::<Vec<_>>());
}

/// A room with alice's ENTER and two TALKs (seqs 1 to 3), alice still in it.
async fn room_with_three_events(app: &TestApp) -> (String, WsClient) {
    let room_id = app.create_room("general").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    for text in ["one", "two"] {
        alice.talk(&room_id, "alice", text).await;
        alice.next_of_type("TALK").await;
    }
    (room_id, alice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_seq_past_the_newest_event_counts_as_the_newest() {
    let app = spawn_app().await;
    let (room_id, mut alice) = room_with_three_events(&app).await;
    let mut bob = app.connect().await;

    bob.enter_after(&room_id, "bob", 1000).await;

    let enter = bob.next_of_type("ENTER").await;
    assert_eq!(
        (enter["sender"].as_str(), enter["seq"].as_u64()),
        (Some("bob"), Some(4))
    );
    alice.talk(&room_id, "alice", "live").await;
    let live = bob.next_of_type("TALK").await;
    assert_eq!(
        (live["message"].as_str(), live["seq"].as_u64()),
        (Some("live"), Some(5))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_last_seq_works_and_entering_with_it_again_overflows_nothing() {
    let app = spawn_app().await;
    let (room_id, mut alice) = room_with_three_events(&app).await;
    let mut bob = app.connect().await;

    bob.enter_after(&room_id, "bob", i64::MAX as u64).await;
    assert_eq!(bob.next_of_type("ENTER").await["seq"], 4);
    bob.enter_after(&room_id, "bob", i64::MAX as u64).await;
    alice.talk(&room_id, "alice", "still live").await;

    let next = bob.next_json().await;
    assert_eq!(
        next["type"], "TALK",
        "the second ENTER replayed nothing: {next}"
    );
    assert_eq!(next["seq"], 5);
    assert_eq!(app.room(&room_id).await["lastSeq"], 5);
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_seq_that_is_not_an_integer_from_0_to_2_pow_63_minus_1_is_invalid_message() {
    let app = spawn_app().await;
    let (room_id, _alice) = room_with_three_events(&app).await;
    let mut bob = app.connect().await;

    for raw in [
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "-9223372036854775809",
        "1.5",
        "1e3",
        "\"3\"",
        "true",
        "[]",
    ] {
        bob.send_text(format!(
            r#"{{"type":"ENTER","roomId":"{room_id}","sender":"bob","lastSeq":{raw},"clientMsgId":"e"}}"#
        ))
        .await;
        let error = bob.next_error("INVALID_MESSAGE").await;
        assert_eq!(error["clientMsgId"], "e", "lastSeq {raw}");
        assert_eq!(error["roomId"], room_id.as_str(), "lastSeq {raw}");
    }

    let room = app.room(&room_id).await;
    assert_eq!(
        (room["lastSeq"].as_u64(), room["memberCount"].as_u64()),
        (Some(3), Some(1))
    );
}

/// Fills a room with TALKs from alice, who is in it, and returns the room's last seq.
async fn talk_many(alice: &mut WsClient, room_id: &str, count: usize) -> u64 {
    let mut last = 0;
    for chunk in 0..count / 100 {
        for i in 0..100 {
            alice.talk(room_id, "alice", &format!("m{chunk}-{i}")).await;
        }
        for _ in 0..100 {
            last = alice.next_of_type("TALK").await["seq"].as_u64().unwrap();
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_enter_with_last_seq_restarts_the_replay_from_there() {
    let app = spawn_app().await;
    let room_id = app.create_room("long").await;
    let mut alice = app.connect().await;
    alice.join(&room_id, "alice").await;
    let last = talk_many(&mut alice, &room_id, 1500).await;

    alice.enter_after(&room_id, "alice", 0).await;
    for seq in 1..=10 {
        assert_eq!(alice.next_json().await["seq"], seq);
    }
    alice.enter_after(&room_id, "alice", 0).await;

    // The first replay may go on for a while; then it starts over at 1, and nothing is skipped.
    let mut previous = 10;
    loop {
        let seq = alice.next_json().await["seq"].as_u64().unwrap();
        if seq == 1 {
            break;
        }
        assert_eq!(seq, previous + 1, "the first replay skipped ahead");
        previous = seq;
    }
    for seq in 2..=last {
        assert_eq!(alice.next_json().await["seq"], seq);
    }
    alice.talk(&room_id, "alice", "live").await;
    assert_eq!(alice.next_of_type("TALK").await["seq"], last + 1);
}
