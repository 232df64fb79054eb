//! The writer task on a real SQLite store: a dead task, and the commit wait.

use super::super::Writer;
use super::*;
use crate::hub::Hub;

/// A writer on a fresh SQLite store (kept while the directory lives), and its metrics.
async fn started(
    commit_wait: Duration,
) -> (
    tempfile::TempDir,
    Writer,
    tokio::task::JoinHandle<()>,
    Arc<Metrics>,
) {
    let dir = tempfile::tempdir().unwrap();
    let storage = crate::store::sqlite_in(dir.path(), 1).await;
    let metrics = Arc::new(Metrics::new());
    let hub = Arc::new(Hub::new(metrics.clone()));
    let options = Options {
        queue: 8,
        batch: super::super::BatchLimits::for_session_queue(8, 4096),
        purge_delay: Duration::ZERO,
        default_retention: None,
        retention_check: Duration::from_secs(10),
        commit_wait,
    };
    let (writer, task) = Writer::start(storage.writer, hub, metrics.clone(), options);
    (dir, writer, task, metrics)
}

#[tokio::test]
async fn a_writer_whose_task_died_is_unavailable() {
    let (_dir, writer, task, _) = started(Duration::ZERO).await;
    assert_eq!(writer.ping().await, Ok(()));

    task.abort();
    let _ = task.await;

    assert_eq!(writer.ping().await, Err(WriteError::Unavailable));
    assert!(writer.reserve().await.is_err());
    assert!(writer.try_reserve().is_err());
}

#[tokio::test]
async fn a_batch_waits_its_commit_wait_for_more_to_join_it() {
    use crate::domain::{MessageText, NewEvent, NewRoom, RoomName, Sender};
    let (_dir, writer, _task, metrics) = started(Duration::from_millis(500)).await;
    let room = NewRoom::public(RoomName::parse("waiting").unwrap());
    let room_id = writer.create_room(room).await.unwrap().room_id;
    let talk = |text| {
        let sender = Sender::parse("alice").unwrap();
        NewEvent::talk(room_id, sender, MessageText::parse(text).unwrap())
    };

    let first = writer.reserve().await.unwrap().append(talk("one"));
    // The second comes only once the writer has taken the first into a batch.
    while !metrics
        .render()
        .contains("chat_writer_taken_total{command=\"append\"} 1")
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second = writer.reserve().await.unwrap().append(talk("two"));
    assert!(first.await.unwrap().is_ok());
    assert!(second.await.unwrap().is_ok());

    let rendered = metrics.render();
    assert!(
        rendered.contains("chat_store_batch_size_count 1\n"),
        "{rendered}"
    );
    assert!(
        rendered.contains("chat_store_batch_size_sum 2.0"),
        "{rendered}"
    );
}

#[tokio::test]
async fn a_full_batch_is_committed_without_waiting() {
    use crate::domain::{MessageText, NewEvent, NewRoom, RoomName, Sender};
    let (_dir, writer, _task, metrics) = started(Duration::from_secs(3600)).await;
    let room = NewRoom::public(RoomName::parse("full").unwrap());
    let room_id = writer.create_room(room).await.unwrap().room_id;
    // A batch here holds 4 (half the session queue of 8).
    let mut replies = Vec::new();
    for text in ["one", "two", "three", "four"] {
        let sender = Sender::parse("alice").unwrap();
        let talk = NewEvent::talk(room_id, sender, MessageText::parse(text).unwrap());
        replies.push(writer.reserve().await.unwrap().append(talk));
    }
    let stored = async {
        for reply in replies {
            assert!(reply.await.unwrap().is_ok());
        }
    };
    tokio::time::timeout(Duration::from_secs(10), stored)
        .await
        .expect("a full batch waited out its commit wait");
    assert!(metrics.render().contains("chat_store_batch_size_sum 4.0"));
}
