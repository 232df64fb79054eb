//! The SQLite backend on a real file: reads, batched writes, refusals, purges.

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use super::connect;
use crate::domain::{ClientMsgId, EventKind, NewEvent, RoomId, RoomName, Sender, Seq, Timestamp};
use crate::store::{EventRange, PageLimit, Refused, Storage};

struct Db {
    dir: tempfile::TempDir,
    storage: Storage,
}

impl Db {
    fn url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("chat.db").display())
    }

    async fn reopen(self) -> Db {
        let url = self.url();
        self.storage.store.close().await;
        drop(self.storage);
        Db {
            storage: connect(&url, 2).await.unwrap(),
            dir: self.dir,
        }
    }

    async fn room(&mut self, name: &str) -> RoomId {
        let name = RoomName::parse(name).unwrap();
        let writer = &mut self.storage.writer;
        writer
            .create_room(&name, Timestamp::now())
            .await
            .unwrap()
            .room_id
    }

    async fn talks(&mut self, room_id: RoomId, count: usize) {
        let batch = (0..count).map(|_| talk(room_id, "hi")).collect();
        self.storage.writer.append(batch).await.unwrap();
    }

    async fn seqs(&self, room_id: RoomId) -> Vec<i64> {
        let all = EventRange::Forward {
            after: Seq::ZERO,
            before: Seq::MAX,
            limit: 500,
        };
        let events = self.storage.store.events(room_id, all).await.unwrap();
        events.iter().map(|event| event.seq.get()).collect()
    }

    async fn side_statement(&self, sql: &'static str) {
        let mut conn = SqliteConnection::connect(&self.url()).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
}

async fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("chat.db").display());
    Db {
        storage: connect(&url, 2).await.unwrap(),
        dir,
    }
}

fn talk(room_id: RoomId, message: &str) -> NewEvent {
    NewEvent {
        room_id,
        kind: EventKind::Talk,
        sender: Sender::parse("alice").unwrap(),
        message: message.into(),
        client_msg_id: Some(ClientMsgId::parse("c").unwrap()),
    }
}

fn seqs_of(results: &[Result<crate::domain::Event, Refused>]) -> Vec<Result<i64, Refused>> {
    results
        .iter()
        .map(|r| r.as_ref().map(|event| event.seq.get()).map_err(|e| *e))
        .collect()
}

#[tokio::test]
async fn a_batch_gives_each_room_consecutive_seqs_and_refuses_gone_rooms() {
    let mut db = db().await;
    let (a, b, gone) = (db.room("a").await, db.room("b").await, RoomId::random());

    let batch = vec![
        talk(a, "1"),
        talk(b, "1"),
        talk(gone, "1"),
        talk(a, "2"),
        talk(b, "2"),
    ];
    let results = db.storage.writer.append(batch).await.unwrap();

    let expected = [Ok(1), Ok(1), Err(Refused::RoomGone), Ok(2), Ok(2)];
    assert_eq!(seqs_of(&results), expected);
    assert_eq!(
        db.storage.store.room(a).await.unwrap().unwrap().last_seq,
        Seq::new(2).unwrap()
    );
    assert_eq!(db.seqs(b).await, [1, 2]);
}

#[tokio::test]
async fn an_event_the_database_refuses_fails_alone_and_takes_no_seq() {
    let mut db = db().await;
    let (a, b) = (db.room("a").await, db.room("b").await);
    db.side_statement(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.message = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .await;

    let batch = vec![
        talk(a, "ok"),
        talk(a, "poison"),
        talk(a, "ok"),
        talk(b, "ok"),
    ];
    let results = db.storage.writer.append(batch).await.unwrap();

    assert_eq!(
        seqs_of(&results),
        [Ok(1), Err(Refused::Rejected), Ok(2), Ok(1)]
    );
    assert_eq!(db.seqs(a).await, [1, 2]);
}

#[tokio::test]
async fn a_batch_that_cannot_be_stored_at_all_fails_whole() {
    let mut db = db().await;
    let a = db.room("a").await;
    db.side_statement("ALTER TABLE events RENAME TO elsewhere")
        .await;

    assert!(
        db.storage
            .writer
            .append(vec![talk(a, "lost")])
            .await
            .is_err()
    );

    db.side_statement("ALTER TABLE elsewhere RENAME TO events")
        .await;
    assert!(db.seqs(a).await.is_empty());
    assert_eq!(
        db.storage.store.room(a).await.unwrap().unwrap().last_seq,
        Seq::ZERO
    );
}

#[tokio::test]
async fn a_deleted_room_is_gone_at_once_and_its_events_in_steps_even_across_a_restart() {
    let mut db = db().await;
    let (doomed, kept) = (db.room("doomed").await, db.room("kept").await);
    db.talks(doomed, 2500).await;
    db.talks(kept, 3).await;

    assert!(db.storage.writer.delete_room(doomed).await.unwrap());
    assert!(db.storage.store.room(doomed).await.unwrap().is_none());
    assert!(!db.storage.writer.delete_room(doomed).await.unwrap());
    assert!(db.storage.writer.purge_step(1000).await.unwrap());
    assert_eq!(
        db.seqs(doomed).await[0],
        1001,
        "the first 1,000 events are gone"
    );

    let mut db = db.reopen().await;
    while db.storage.writer.purge_step(1000).await.unwrap() {}

    assert!(db.seqs(doomed).await.is_empty());
    assert_eq!(db.seqs(kept).await, [1, 2, 3]);
}

#[tokio::test]
async fn a_room_is_never_stamped_before_the_newest_room() {
    let mut db = db().await;
    let name = RoomName::parse("r").unwrap();
    let mut create = async |millis| {
        let writer = &mut db.storage.writer;
        let room = writer
            .create_room(&name, Timestamp::from_millis(millis))
            .await
            .unwrap();
        room.created_at.millis()
    };

    assert_eq!(create(2_000).await, 2_000);
    assert_eq!(create(1_000).await, 2_000, "the clock went back");
    assert_eq!(create(3_000).await, 3_000);
}

#[tokio::test]
async fn a_replay_page_ends_once_its_text_reaches_the_byte_bound() {
    let mut db = db().await;
    let room = db.room("r").await;
    let message = "x".repeat(100);
    let batch = (0..10).map(|_| talk(room, &message)).collect();
    db.storage.writer.append(batch).await.unwrap();
    let seqs_after = async |after: i64, bytes| {
        let limit = PageLimit { events: 8, bytes };
        let after = Seq::new(after).unwrap();
        let page = db
            .storage
            .store
            .page_after(room, after, limit)
            .await
            .unwrap();
        page.iter().map(|event| event.seq.get()).collect::<Vec<_>>()
    };

    // Each event carries 106 bytes of text (message, sender, clientMsgId).
    assert_eq!(seqs_after(0, 250).await, [1, 2, 3]);
    assert_eq!(
        seqs_after(0, 1).await,
        [1],
        "a page holds at least one event"
    );
    assert_eq!(seqs_after(0, 1 << 20).await, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(seqs_after(9, 1 << 20).await, [10]);
    assert_eq!(seqs_after(i64::MAX, 1 << 20).await, Vec::<i64>::new());
}
