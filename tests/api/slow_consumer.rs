use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{WAIT, spawn_app_with};

/// TALKs the sender keeps in flight, so batches stay small and healthy queues never fill.
const WINDOW: usize = 8;
/// An upper bound on how many TALKs it may take to fill the stalled reader's buffers.
const MAX_TALKS: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_is_closed_with_1013_and_never_holds_up_the_room() {
    let app = spawn_app_with(|s| s.session_queue = 64).await;
    let room_id = app.create_room("general").await;
    let mut stalled = app.connect_small_buffer().await;
    stalled.join(&room_id, "stalled").await;
    let mut reader = app.connect().await;
    reader.join(&room_id, "reader").await;
    let mut talker = app.connect().await;
    talker.join(&room_id, "talker").await;
    reader.next_of_type("ENTER").await;

    // The reader counts every TALK it gets while the talker talks until the stalled session
    // is detached from the room (memberCount drops from 3 to 2).
    let reader_task = tokio::spawn(async move {
        let mut seqs = Vec::new();
        loop {
            let frame = reader.next_json().await;
            match frame["type"].as_str() {
                Some("TALK") if frame["message"] == "done" => return seqs,
                Some("TALK") => seqs.push(frame["seq"].as_u64().unwrap()),
                _ => {}
            }
        }
    });
    let text = "x".repeat(3000);
    let mut sent = 0;
    while sent < MAX_TALKS {
        talker
            .talk_and_await(&room_id, "talker", &text, WINDOW)
            .await;
        sent += WINDOW;
        if sent % 256 == 0 && app.room(&room_id).await["memberCount"] == 2 {
            break;
        }
    }
    assert!(sent < MAX_TALKS, "the stalled session was never detached");
    talker.talk(&room_id, "talker", "done").await;

    let seqs = tokio::time::timeout(WAIT, reader_task)
        .await
        .expect("reader keeps up")
        .unwrap();
    assert_eq!(seqs.len(), sent, "the reader got every TALK");
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "in seq order");
    let close_code = read_until_close(&mut stalled).await;
    assert_eq!(close_code, 1013);
}

/// Drains whatever the stalled client had buffered, up to the close frame.
async fn read_until_close(client: &mut crate::helpers::WsClient) -> u16 {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), client.ws.next())
            .await
            .expect("the stalled client gets its close frame");
        match frame {
            Some(Ok(Message::Close(Some(close)))) => return u16::from(close.code),
            Some(Ok(_)) => continue,
            other => panic!("expected frames then a close, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_never_reads_is_closed_once_its_queue_holds_4_mib_of_events() {
    let app = crate::helpers::spawn_app().await;
    let room_id = app.create_room("big messages").await;
    let mut stalled = app.connect_small_buffer().await;
    stalled.join(&room_id, "stalled").await;
    let mut talker = app.connect().await;
    talker.join(&room_id, "talker").await;

    // 3,000 TALKs of 4,000 bytes are 12 MB: over the 4 MiB queue plus what the sockets buffer,
    // but under the 4,096-event bound, so only a byte bound can detach the stalled member.
    let text = "x".repeat(4000);
    let mut sent = 0;
    while sent < 3000 {
        talker
            .talk_and_await(&room_id, "talker", &text, WINDOW)
            .await;
        sent += WINDOW;
        if sent % 128 == 0 && app.room(&room_id).await["memberCount"] == 1 {
            break;
        }
    }

    assert!(sent < 3000, "the stalled member was never detached");
    assert_eq!(read_until_close(&mut stalled).await, 1013);
}
