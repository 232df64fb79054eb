//! Deleting rooms under their members, racing their frames, and under load elsewhere.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{WsClient, spawn_app, spawn_app_with};

/// What became of a pipelined ENTER and TALK into a room deleted meanwhile.
#[derive(Debug, Default)]
struct Race {
    entered: Option<bool>,
    talked: Option<Value>,
    closed: bool,
}

async fn settle_race(client: &mut WsClient, room_id: &str) -> Race {
    let mut race = Race::default();
    while race.entered.is_none()
        || race.talked.is_none()
        || race.entered == Some(true) && !race.closed
    {
        let frame = client.next_json().await;
        match (frame["type"].as_str(), frame["clientMsgId"].as_str()) {
            (Some("ENTER"), Some("enter")) => race.entered = Some(true),
            (Some("ERROR"), Some("enter")) => {
                assert_eq!(frame["code"], "ROOM_NOT_FOUND", "{frame}");
                race.entered = Some(false);
            }
            (Some("TALK") | Some("ERROR"), Some("talk")) => race.talked = Some(frame),
            (Some("CLOSED"), _) => {
                assert_eq!(frame["roomId"], room_id);
                race.closed = true;
            }
            _ => panic!("unexpected {frame}"),
        }
    }
    race
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_racing_an_enter_and_a_talk_leaves_no_member_behind() {
    let app = spawn_app().await;
    for round in 0..20 {
        let room_id = app.create_room("doomed").await;
        let mut alice = app.connect().await;
        let delete = {
            let (http, url) = (app.http.clone(), app.url(&format!("/api/rooms/{room_id}")));
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(round * 150)).await;
                http.delete(url).send().await.unwrap().status()
            })
        };
        alice
            .send_json(json!({"type": "ENTER", "roomId": room_id, "sender": "alice", "clientMsgId": "enter"}))
            .await;
        alice
            .send_json(json!({"type": "TALK", "roomId": room_id, "sender": "alice", "message": "hi", "clientMsgId": "talk"}))
            .await;

        let race = settle_race(&mut alice, &room_id).await;
        assert_eq!(delete.await.unwrap(), 204);

        let talked = race.talked.expect("the TALK got an answer");
        if race.entered == Some(false) {
            assert_eq!(talked["code"], "NOT_IN_ROOM", "round {round}: {talked}");
        }
        alice.talk(&room_id, "alice", "anyone?").await;
        alice.next_error("NOT_IN_ROOM").await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l == "chat_rooms_active 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_two_rooms_is_closed_out_of_the_deleted_one_only() {
    let app = spawn_app().await;
    let doomed = app.create_room("doomed").await;
    let (kept, mut alice, mut bob) = app.alice_and_bob_in_a_room().await;
    alice.join(&doomed, "alice").await;

    assert_eq!(
        app.delete(&format!("/api/rooms/{doomed}")).await.status(),
        204
    );

    let closed = alice.next_of_type("CLOSED").await;
    assert_eq!(closed["roomId"], doomed.as_str());
    alice.talk(&doomed, "alice", "hello?").await;
    alice.next_error("NOT_IN_ROOM").await;
    alice.talk(&kept, "alice", "still here").await;
    assert_eq!(bob.next_of_type("TALK").await["message"], "still here");
    assert_eq!(app.room(&kept).await["memberCount"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_big_room_does_not_hold_up_talk_in_other_rooms() {
    let app = spawn_app_with(|settings| settings.purge_delay_secs = 0).await;
    let big = app.create_room("big").await;
    app.fill_room(&big, 100_000).await;
    let other = app.create_room("other").await;
    let mut alice = app.connect().await;
    alice.join(&other, "alice").await;

    assert_eq!(app.delete(&format!("/api/rooms/{big}")).await.status(), 204);
    alice.talk(&other, "alice", "right after").await;
    alice.next_of_type("TALK").await;

    let left = app.stored_events(&big).await;
    assert!(
        left > 0,
        "the TALK waited until all 100,000 events were deleted"
    );
    let history = app.get(&format!("/api/rooms/{big}/messages")).await;
    assert_eq!(history.status(), 404, "the room is gone at once");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.stored_events(&big).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "its events are never purged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_resuming_when_its_room_is_deleted_gets_every_event_then_closed() {
    const STORED: u64 = 3000;
    let app = spawn_app().await;
    let room_id = app.create_room("long").await;
    app.fill_room(&room_id, STORED).await;
    // A small receive buffer: the replay stalls on the socket after a few events.
    let mut alice = app.connect_small_buffer().await;
    alice.enter_after(&room_id, "alice", 0).await;
    assert_eq!(alice.next_json().await["seq"], 1, "the replay started");

    let deleted = app.delete(&format!("/api/rooms/{room_id}")).await;
    assert_eq!(deleted.status(), 204);

    let mut seqs = vec![1];
    let closed = loop {
        let frame = alice.next_json().await;
        match frame["seq"].as_u64() {
            Some(seq) => seqs.push(seq),
            None => break frame,
        }
    };
    let expected: Vec<u64> = (1..=STORED + 1).collect();
    assert!(
        seqs == expected,
        "every event, her ENTER last: got {} ({:?} to {:?}), expected 1 to {}",
        seqs.len(),
        seqs.first(),
        seqs.last(),
        STORED + 1
    );
    assert_eq!(
        (closed["type"].as_str(), closed["roomId"].as_str()),
        (Some("CLOSED"), Some(room_id.as_str()))
    );
}
