//! One storage suite, run against both backends: SQLite on a temporary file and PostgreSQL on a
//! fresh database. Each test is written once; `on_both_backends!` runs it on each.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::Connection;

use super::{EventRange, MemberCursor, PageLimit, Purge, Refused, RoomRecord, Storage, connect};
use crate::domain::{
    Action, Authority, ClientMsgId, Emoji, Event, EventKind, InstanceId, MessageText, Moderation,
    NewEvent, NewRoom, ReadMarker, Role, RoomId, RoomName, Sender, Seq, Timestamp, Visibility,
};

#[path = "../../tests/support/postgres.rs"]
mod test_database;

use test_database::TestDatabase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Db {
    backend: Backend,
    url: String,
    storage: Storage,
    /// Where the data lives, kept until the test ends.
    _dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
}

impl Db {
    async fn open(backend: Backend) -> Db {
        let (url, dir, database) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("chat.db").display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let database = TestDatabase::create().await;
                (database.url.clone(), None, Some(database))
            }
        };
        Db {
            storage: connect(
                &url,
                2,
                InstanceId::random(),
                crate::config::Durability::Fsync,
            )
            .await
            .unwrap(),
            backend,
            url,
            _dir: dir,
            _database: database,
        }
    }

    /// Another process on the same data: a new instance.
    async fn instance(&self) -> Storage {
        connect(
            &self.url,
            2,
            InstanceId::random(),
            crate::config::Durability::Fsync,
        )
        .await
        .unwrap()
    }

    /// Closes this process and starts another on the same data.
    async fn reopen(self) -> Db {
        self.storage.store.close().await;
        let storage = self.instance().await;
        Db { storage, ..self }
    }

    async fn room(&mut self, name: &str) -> RoomId {
        let room = NewRoom::public(RoomName::parse(name).unwrap());
        let writer = &mut self.storage.writer;
        writer
            .create_room(&room, Timestamp::now())
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

    async fn members(&self, rooms: &[RoomId]) -> HashMap<RoomId, usize> {
        self.storage.store.member_counts(rooms).await.unwrap()
    }

    /// Runs SQL (one or more statements) on a connection of its own beside the store's.
    async fn side(&self, sqlite: &'static str, postgres: &'static str) {
        self.try_side(sqlite, postgres).await.unwrap();
    }

    async fn try_side(&self, sqlite: &'static str, postgres: &'static str) -> sqlx::Result<()> {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
                sqlx::raw_sql(sqlite).execute(&mut conn).await.map(drop)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                sqlx::raw_sql(postgres).execute(&mut conn).await.map(drop)
            }
        }
    }
}

/// Runs each test once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Db::open(super::Backend::Sqlite).await).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Db::open(super::Backend::Postgres).await).await;
            })*
        }
    };
}

on_both_backends!(
    a_batch_gives_each_room_consecutive_seqs_and_refuses_gone_rooms,
    an_event_the_database_refuses_fails_alone_and_takes_no_seq,
    a_batch_that_cannot_be_stored_at_all_fails_whole,
    a_deleted_room_is_gone_at_once_and_its_events_after_a_delay_in_steps_even_across_a_restart,
    a_room_is_never_stamped_before_the_newest_room,
    a_replay_page_ends_once_its_text_reaches_the_byte_bound,
    memberships_follow_enter_and_leave_and_nobody_leaves_twice,
    a_dead_instance_is_reaped_once_with_a_leave_for_each_member_a_bots_marked,
    two_instances_appending_to_the_same_rooms_share_one_gap_free_order,
    newest_seqs_are_given_for_rooms_that_exist,
    a_deleted_rooms_last_seq_is_kept_while_its_events_are,
    an_event_is_never_stored_twice_under_one_message_id,
    a_resent_talk_is_answered_with_the_first_and_stored_once,
    racing_resends_on_two_instances_store_one_talk,
    a_batch_larger_than_a_statement_is_stored_whole_and_finds_every_resend,
    reactions_to_one_talk_in_one_batch_count_its_emoji_once,
    a_read_marker_only_rises_and_never_past_the_newest_event,
    members_are_listed_per_sender_with_sessions_since_and_read_seq,
    the_members_list_pages_by_since_then_sender,
    a_rooms_rules_change_with_its_moderation_events_and_go_with_the_room,
);

fn talk(room_id: RoomId, message: &str) -> NewEvent {
    let sender = Sender::parse("alice").unwrap();
    NewEvent::talk(room_id, sender, MessageText::parse(message).unwrap())
}

/// A TALK by `sender` carrying the client's own id for it.
fn talk_with_id(room_id: RoomId, sender: &str, message: &str, id: &str) -> NewEvent {
    NewEvent {
        sender: name(sender),
        client_msg_id: Some(ClientMsgId::parse(id).unwrap()),
        ..talk(room_id, message)
    }
}

fn name(raw: &str) -> Sender {
    Sender::parse(raw).unwrap()
}

fn seqs_of(results: &[Result<Event, Refused>]) -> Vec<Result<i64, Refused>> {
    results
        .iter()
        .map(|r| {
            r.as_ref()
                .map(|event| event.seq.get())
                .map_err(Refused::clone)
        })
        .collect()
}

async fn a_batch_gives_each_room_consecutive_seqs_and_refuses_gone_rooms(mut db: Db) {
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

async fn an_event_the_database_refuses_fails_alone_and_takes_no_seq(mut db: Db) {
    let (a, b) = (db.room("a").await, db.room("b").await);
    db.side(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.message = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.message = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse();",
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

async fn a_batch_that_cannot_be_stored_at_all_fails_whole(mut db: Db) {
    let a = db.room("a").await;
    let away = "ALTER TABLE events RENAME TO elsewhere";
    db.side(away, away).await;

    assert!(
        db.storage
            .writer
            .append(vec![talk(a, "lost")])
            .await
            .is_err()
    );

    let back = "ALTER TABLE elsewhere RENAME TO events";
    db.side(back, back).await;
    assert!(db.seqs(a).await.is_empty());
    assert_eq!(
        db.storage.store.room(a).await.unwrap().unwrap().last_seq,
        Seq::ZERO
    );
}

async fn a_deleted_room_is_gone_at_once_and_its_events_after_a_delay_in_steps_even_across_a_restart(
    mut db: Db,
) {
    let (doomed, kept) = (db.room("doomed").await, db.room("kept").await);
    db.talks(doomed, 2500).await;
    db.talks(kept, 3).await;

    let last = db.storage.writer.delete_room(doomed).await.unwrap();
    assert_eq!(last, Seq::new(2500), "the room's last seq");
    assert!(db.storage.store.room(doomed).await.unwrap().is_none());
    assert_eq!(db.storage.writer.delete_room(doomed).await.unwrap(), None);
    let not_yet = db.storage.writer.purge_step(1000, Duration::from_secs(60));
    assert_eq!(
        not_yet.await.unwrap(),
        Purge::Waiting,
        "deleted a moment ago"
    );
    let now = db.storage.writer.purge_step(1000, Duration::ZERO);
    assert_eq!(now.await.unwrap(), Purge::Purged);
    assert_eq!(
        db.seqs(doomed).await[0],
        1001,
        "the first 1,000 events are gone"
    );

    let mut db = db.reopen().await;
    while db
        .storage
        .writer
        .purge_step(1000, Duration::ZERO)
        .await
        .unwrap()
        == Purge::Purged
    {}
    let done = db.storage.writer.purge_step(1000, Duration::ZERO);
    assert_eq!(done.await.unwrap(), Purge::Done);

    assert!(db.seqs(doomed).await.is_empty());
    assert_eq!(db.seqs(kept).await, [1, 2, 3]);
}

async fn a_room_is_never_stamped_before_the_newest_room(mut db: Db) {
    let new = NewRoom::public(RoomName::parse("r").unwrap());
    let mut create = async |millis| {
        let writer = &mut db.storage.writer;
        let room = writer
            .create_room(&new, Timestamp::from_millis(millis))
            .await
            .unwrap();
        room.created_at.millis()
    };

    assert_eq!(create(2_000).await, 2_000);
    assert_eq!(create(1_000).await, 2_000, "the clock went back");
    assert_eq!(create(3_000).await, 3_000);
}

async fn a_replay_page_ends_once_its_text_reaches_the_byte_bound(mut db: Db) {
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

    // Each event carries 105 bytes of text (message and sender).
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

async fn memberships_follow_enter_and_leave_and_nobody_leaves_twice(mut db: Db) {
    let (a, b) = (db.room("a").await, db.room("b").await);
    let writer = &mut db.storage.writer;
    let entered = writer
        .append(vec![
            NewEvent::enter(a, name("alice"), 1),
            NewEvent::enter(a, name("bob"), 2),
            NewEvent::enter(b, name("alice"), 1),
            // Entered and gone again in one batch (a client that hung up at once).
            NewEvent::enter(b, name("carol"), 3),
            NewEvent::leave(b, name("carol"), 3),
        ])
        .await
        .unwrap();
    assert!(entered.iter().all(Result::is_ok), "{entered:?}");
    assert_eq!(db.members(&[a, b]).await, HashMap::from([(a, 2), (b, 1)]));

    let writer = &mut db.storage.writer;
    let left = writer
        .append(vec![
            NewEvent::leave(a, name("bob"), 2),
            NewEvent::leave(a, name("bob"), 2),
            NewEvent::leave(b, name("dave"), 4),
        ])
        .await
        .unwrap();
    assert_eq!(
        seqs_of(&left),
        [Ok(3), Err(Refused::NotMember), Err(Refused::NotMember)]
    );
    assert_eq!(db.members(&[a, b]).await, HashMap::from([(a, 1), (b, 1)]));

    db.storage.writer.delete_room(b).await.unwrap();
    assert_eq!(db.members(&[a, b]).await, HashMap::from([(a, 1)]));
}

async fn a_dead_instance_is_reaped_once_with_a_leave_for_each_member_a_bots_marked(mut db: Db) {
    let room = db.room("r").await;
    let mut dead = db.instance().await;
    dead.liveness.register().await.unwrap();
    dead.writer
        .append(vec![
            NewEvent::enter(room, name("alice"), 1),
            NewEvent::enter(room, name("bob"), 2).by_bot(true),
        ])
        .await
        .unwrap();
    let reaper = &db.storage.liveness;
    reaper.register().await.unwrap();
    let silence = Duration::from_millis(300);
    assert!(reaper.dead_instances(silence).await.unwrap().is_empty());
    tokio::time::sleep(silence * 2).await;
    reaper.heartbeat().await.unwrap();

    let found = reaper.dead_instances(silence).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let (first, more) = db
        .storage
        .writer
        .reap(found[0], Some(silence), 1)
        .await
        .unwrap();
    assert!(more, "a member at a time");
    let orphaned = db.storage.liveness.dead_instances(silence).await.unwrap();
    assert_eq!(
        orphaned, found,
        "forgotten with members left, it is still to be reaped"
    );
    let (second, _) = db
        .storage
        .writer
        .reap(found[0], Some(silence), 1)
        .await
        .unwrap();

    let left: Vec<(EventKind, &str, i64, bool)> = first
        .iter()
        .chain(&second)
        .map(|e| (e.kind, e.sender.as_str(), e.seq.get(), e.bot))
        .collect();
    assert_eq!(
        left,
        [
            (EventKind::Leave, "alice", 3, false),
            (EventKind::Leave, "bob", 4, true)
        ],
        "a bot's LEAVE says so: its membership remembered"
    );
    assert!(db.members(&[room]).await.is_empty());
    assert!(
        db.storage
            .liveness
            .dead_instances(silence)
            .await
            .unwrap()
            .is_empty()
    );
    let reaper = &mut db.storage.writer;
    let (again, more) = reaper.reap(found[0], Some(silence), 10).await.unwrap();
    assert!(again.is_empty() && !more);
    assert!(
        !dead.liveness.heartbeat().await.unwrap(),
        "it learns it was taken for dead"
    );
    let late = dead
        .writer
        .append(vec![NewEvent::leave(room, name("alice"), 1)])
        .await
        .unwrap();
    assert_eq!(seqs_of(&late), [Err(Refused::NotMember)], "no second LEAVE");
    assert_eq!(db.seqs(room).await, [1, 2, 3, 4]);
}

async fn two_instances_appending_to_the_same_rooms_share_one_gap_free_order(mut db: Db) {
    let (a, b) = (db.room("a").await, db.room("b").await);
    let other = db.instance().await;
    let batches = |first: RoomId, second: RoomId, mut storage: Storage| async move {
        for _ in 0..30 {
            let batch = vec![talk(first, "x"), talk(second, "y"), talk(first, "z")];
            let results = storage.writer.append(batch).await.unwrap();
            assert!(results.iter().all(Result::is_ok));
        }
        storage
    };
    let spare = db.instance().await;
    let mine = std::mem::replace(&mut db.storage, spare);

    // Opposite room orders: unless rooms are locked in one fixed order, this deadlocks.
    let (mine, _other) = tokio::join!(batches(a, b, mine), batches(b, a, other));

    db.storage = mine;
    assert_eq!(db.seqs(a).await, (1..=90).collect::<Vec<_>>());
    assert_eq!(db.seqs(b).await, (1..=90).collect::<Vec<_>>());
}

async fn newest_seqs_are_given_for_rooms_that_exist(mut db: Db) {
    let (a, b) = (db.room("a").await, db.room("b").await);
    db.talks(a, 3).await;
    let gone = RoomId::random();

    let newest = db.storage.store.last_seqs(&[a, b, gone]).await.unwrap();

    assert_eq!(
        newest,
        HashMap::from([(a, Seq::new(3).unwrap()), (b, Seq::ZERO)])
    );
    assert!(db.storage.store.last_seqs(&[]).await.unwrap().is_empty());
}

async fn a_deleted_rooms_last_seq_is_kept_while_its_events_are(mut db: Db) {
    let (doomed, kept) = (db.room("doomed").await, db.room("kept").await);
    db.talks(doomed, 4).await;
    db.storage.writer.delete_room(doomed).await.unwrap();

    let rooms = [doomed, kept, RoomId::random()];
    assert_eq!(
        db.storage.store.last_seqs(&rooms).await.unwrap(),
        HashMap::from([(kept, Seq::ZERO)])
    );
    assert_eq!(
        db.storage.store.deleted_last_seqs(&rooms).await.unwrap(),
        HashMap::from([(doomed, Seq::new(4).unwrap())])
    );
}

async fn an_event_is_never_stored_twice_under_one_message_id(mut db: Db) {
    let room = db.room("r").await;
    db.talks(room, 1).await;
    let copy = "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
                SELECT room_id, seq + 1, message_id, kind, sender, message, client_msg_id, sent_at FROM events";

    assert!(db.try_side(copy, copy).await.is_err());
    assert_eq!(db.seqs(room).await, [1]);
}

/// The seq each result was stored at, or the seq of the first copy it repeats (negated).
fn stored_or_first(results: &[Result<Event, Refused>]) -> Vec<i64> {
    results
        .iter()
        .map(|result| match result {
            Ok(event) => event.seq.get(),
            Err(Refused::Duplicate(first)) => -first.seq.get(),
            Err(other) => panic!("unexpected {other:?}"),
        })
        .collect()
}

async fn a_resent_talk_is_answered_with_the_first_and_stored_once(mut db: Db) {
    let (a, b) = (db.room("a").await, db.room("b").await);
    let first = db
        .storage
        .writer
        .append(vec![talk_with_id(a, "alice", "hello", "c-1")])
        .await
        .unwrap();

    let again = db
        .storage
        .writer
        .append(vec![
            talk_with_id(a, "alice", "hello again", "c-1"),
            talk_with_id(a, "bob", "same id, other sender", "c-1"),
            talk_with_id(b, "alice", "same id, other room", "c-1"),
            talk_with_id(a, "alice", "new", "c-2"),
            talk_with_id(a, "alice", "new, twice in one batch", "c-2"),
            NewEvent::enter(a, name("alice"), 1).correlated(ClientMsgId::parse("c-1").ok()),
        ])
        .await
        .unwrap();

    assert_eq!(stored_or_first(&again), [-1, 2, 1, 3, -3, 4]);
    let Err(Refused::Duplicate(copy)) = &again[0] else {
        panic!("a duplicate")
    };
    assert_eq!(Ok(&**copy), first[0].as_ref(), "the first, as stored");
    assert_eq!(
        db.seqs(a).await,
        [1, 2, 3, 4],
        "nothing stored twice, no seq used"
    );
    let reopened = db.reopen().await;
    let mut db = reopened;
    let later = db
        .storage
        .writer
        .append(vec![talk_with_id(a, "alice", "a restart later", "c-1")])
        .await
        .unwrap();
    assert_eq!(stored_or_first(&later), [-1]);
}

/// Past 1,000 rows a batch's SQL is several statements (each backend sends them at once where
/// it can): rooms' seqs, resends and events must still line up.
async fn a_batch_larger_than_a_statement_is_stored_whole_and_finds_every_resend(mut db: Db) {
    let (a, b) = (db.room("a").await, db.room("b").await);
    let ids: Vec<String> = (0..1500).map(|i| format!("c-{i}")).collect();
    let first: Vec<NewEvent> = ids
        .iter()
        .map(|id| talk_with_id(a, "alice", "first", id))
        .collect();
    let stored = db.storage.writer.append(first).await.unwrap();
    assert_eq!(stored_or_first(&stored), (1..=1500).collect::<Vec<_>>());

    let mut again: Vec<NewEvent> = ids
        .iter()
        .map(|id| talk_with_id(a, "alice", "again", id))
        .collect();
    again.extend(
        ids.iter()
            .map(|id| talk_with_id(b, "alice", "new here", id)),
    );
    again.push(talk(a, "new there"));
    let results = db.storage.writer.append(again).await.unwrap();

    let resent = (1..=1500).map(|seq| -seq);
    let expected: Vec<i64> = resent.chain(1..=1500).chain([1501]).collect();
    assert_eq!(stored_or_first(&results), expected);
    let last_seq = |record: Option<RoomRecord>| record.unwrap().last_seq.get();
    assert_eq!(last_seq(db.storage.store.room(a).await.unwrap()), 1501);
    assert_eq!(last_seq(db.storage.store.room(b).await.unwrap()), 1500);
}

/// A TALK's emoji are counted once however many of a batch's REACTs name it: counted once per
/// REACT, half the limit of distinct emoji looked like all of it.
async fn reactions_to_one_talk_in_one_batch_count_its_emoji_once(mut db: Db) {
    let room = db.room("r").await;
    db.talks(room, 1).await;
    let talk = Seq::new(1).unwrap();
    let react = |sender: &str, emoji: &str| {
        let emoji = Emoji::parse(emoji).unwrap();
        NewEvent::reaction(room, EventKind::React, name(sender), talk, emoji)
    };
    let half = Emoji::MAX_PER_TALK / 2;
    let before: Vec<NewEvent> = (0..half)
        .map(|i| react(&format!("s{i}"), &format!(":e{i}:")))
        .collect();
    let stored = db.storage.writer.append(before).await.unwrap();
    assert!(stored.iter().all(Result::is_ok), "{stored:?}");

    let batch = vec![
        react("x", ":new-1:"),
        react("y", ":new-2:"),
        react("z", ":e0:"),
    ];
    let results = db.storage.writer.append(batch).await.unwrap();

    let next = 2 + i64::try_from(half).unwrap();
    assert_eq!(stored_or_first(&results), [next, next + 1, next + 2]);
}

async fn racing_resends_on_two_instances_store_one_talk(mut db: Db) {
    let room = db.room("r").await;
    let resend = |mut storage: Storage| async move {
        let mut outcomes = Vec::new();
        for i in 0..20 {
            let id = format!("c-{i}");
            let results = storage
                .writer
                .append(vec![talk_with_id(room, "alice", "hi", &id)])
                .await
                .unwrap();
            outcomes.push(results[0].is_ok());
        }
        outcomes
    };
    let (one, other) = tokio::join!(resend(db.instance().await), resend(db.instance().await));

    let stored = one.iter().chain(&other).filter(|ok| **ok).count();
    assert_eq!(stored, 20, "each id stored once: {one:?} {other:?}");
    assert_eq!(db.seqs(room).await, (1..=20).collect::<Vec<_>>());
    let copy = "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
                SELECT room_id, seq + 100, message_id || 'x', kind, sender, message, client_msg_id, sent_at \
                FROM events WHERE seq = 1";
    let copy_pg = "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
                   SELECT room_id, seq + 100, gen_random_uuid(), kind, sender, message, client_msg_id, sent_at \
                   FROM events WHERE seq = 1";
    assert!(
        db.try_side(copy, copy_pg).await.is_err(),
        "the unique key refuses a second copy, whoever writes it"
    );
}

fn marker(room_id: RoomId, sender: &str, seq: i64) -> ReadMarker {
    ReadMarker {
        room_id,
        sender: name(sender),
        seq: Seq::new(seq).unwrap(),
    }
}

async fn a_read_marker_only_rises_and_never_past_the_newest_event(mut db: Db) {
    let room = db.room("r").await;
    db.talks(room, 5).await;
    let mut raise = async |markers: &[ReadMarker]| {
        let written = db.storage.writer.write(Vec::new(), markers).await.unwrap();
        written
            .reads
            .iter()
            .map(|seq| seq.map(Seq::get))
            .collect::<Vec<_>>()
    };

    assert_eq!(
        raise(&[marker(room, "alice", 3), marker(room, "bob", 0)]).await,
        [Some(3), None],
        "0 is where everyone starts"
    );
    assert_eq!(raise(&[marker(room, "alice", 2)]).await, [None], "lower");
    assert_eq!(raise(&[marker(room, "alice", 3)]).await, [None], "equal");
    assert_eq!(
        raise(&[marker(room, "alice", i64::MAX)]).await,
        [Some(5)],
        "past the newest counts as the newest"
    );
    assert_eq!(raise(&[marker(room, "alice", 9)]).await, [None]);
    assert_eq!(raise(&[marker(RoomId::random(), "alice", 1)]).await, [None]);
    // Past one call's 64 markers, each sender reading twice, a room that is not among them.
    let mut many: Vec<ReadMarker> = (0..70)
        .map(|i| marker(room, &format!("m{}", i % 35), 1 + i / 35))
        .collect();
    many.insert(10, marker(RoomId::random(), "m0", 1));
    let mut expected: Vec<Option<i64>> = (0..70).map(|i| Some(1 + i / 35)).collect();
    expected.insert(10, None);
    assert_eq!(raise(&many).await, expected, "each marker's own answer");

    let written = db
        .storage
        .writer
        .write(vec![talk(room, "6")], &[marker(room, "alice", 6)])
        .await
        .unwrap();
    assert_eq!(
        written.reads,
        [Some(Seq::new(6).unwrap())],
        "with this batch's events"
    );
}

async fn members_are_listed_per_sender_with_sessions_since_and_read_seq(mut db: Db) {
    let room = db.room("r").await;
    let other = db.instance().await;
    let writer = &mut db.storage.writer;
    writer
        .append(vec![NewEvent::enter(room, name("alice"), 1)])
        .await
        .unwrap();
    writer
        .append(vec![NewEvent::enter(room, name("bob"), 2)])
        .await
        .unwrap();
    let mut other = other;
    other
        .writer
        .append(vec![NewEvent::enter(room, name("alice"), 1)])
        .await
        .unwrap();
    db.storage
        .writer
        .write(vec![], &[marker(room, "bob", 2)])
        .await
        .unwrap();

    let page = db
        .storage
        .store
        .members(room, None, 100)
        .await
        .unwrap()
        .unwrap();

    assert_eq!(page.as_of_seq, Seq::new(3).unwrap());
    let listed: Vec<(&str, u32, i64)> = page
        .items
        .iter()
        .map(|m| (m.sender.as_str(), m.sessions, m.read_seq.get()))
        .collect();
    assert_eq!(listed, [("alice", 2, 0), ("bob", 1, 2)]);
    let enters = db
        .storage
        .store
        .events(
            room,
            EventRange::Forward {
                after: Seq::ZERO,
                before: Seq::MAX,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.items[0].since, enters[0].sent_at,
        "since alice's first ENTER"
    );
    assert_eq!(page.items[1].since, enters[1].sent_at);

    db.storage
        .writer
        .append(vec![NewEvent::leave(room, name("bob"), 2)])
        .await
        .unwrap();
    let page = db
        .storage
        .store
        .members(room, None, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((page.as_of_seq.get(), page.items.len()), (4, 1));
    assert!(
        db.storage
            .store
            .members(RoomId::random(), None, 100)
            .await
            .unwrap()
            .is_none()
    );
    let empty = db.room("empty").await;
    let page = db
        .storage
        .store
        .members(empty, None, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((page.as_of_seq, page.items.len()), (Seq::ZERO, 0));
}

async fn the_members_list_pages_by_since_then_sender(mut db: Db) {
    let room = db.room("r").await;
    // One batch: ENTERs stamped alike (or a millisecond apart), so both keys matter.
    let enters = ["dave", "carol", "bob", "alice", "erin"]
        .iter()
        .zip(1..)
        .map(|(sender, session)| NewEvent::enter(room, name(sender), session))
        .collect();
    db.storage.writer.append(enters).await.unwrap();

    let mut seen = Vec::new();
    let mut after: Option<MemberCursor> = None;
    loop {
        let page = db
            .storage
            .store
            .members(room, after.as_ref(), 2)
            .await
            .unwrap()
            .unwrap();
        seen.extend(page.items.iter().map(|m| m.sender.clone()));
        let Some(last) = page.items.last().filter(|_| page.items.len() == 2) else {
            break;
        };
        after = Some(MemberCursor {
            since: last.since,
            sender: last.sender.clone(),
        });
    }
    let whole = db
        .storage
        .store
        .members(room, None, 100)
        .await
        .unwrap()
        .unwrap();
    let mut expected: Vec<(Timestamp, String)> = whole
        .items
        .iter()
        .map(|m| (m.since, m.sender.clone()))
        .collect();
    let listed = expected.clone();
    expected.sort();
    assert_eq!(listed, expected, "ordered by since, then sender");
    let senders: Vec<String> = expected.into_iter().map(|(_, sender)| sender).collect();
    assert_eq!(seen, senders, "pages add up to the whole list");
    assert_eq!(seen.len(), 5);
}

/// A MODERATION event by alice, a signed-in owner.
fn by_alice(room_id: RoomId, moderation: Moderation) -> NewEvent {
    NewEvent::moderation(room_id, name("alice"), moderation, Authority::Signed)
}

async fn a_rooms_rules_change_with_its_moderation_events_and_go_with_the_room(mut db: Db) {
    let new = NewRoom {
        name: RoomName::parse("team").unwrap(),
        visibility: Visibility::Private,
        owner: Some(name("alice")),
    };
    let writer = &mut db.storage.writer;
    let room = writer.create_room(&new, Timestamp::now()).await.unwrap();
    assert_eq!(room.visibility, Visibility::Private);
    let room = room.room_id;
    let alice = name("alice");
    let later = Timestamp::from_millis(Timestamp::now().millis() + 600_000);
    let actions = vec![
        by_alice(
            room,
            Moderation {
                role: Some(Role::Member),
                ..Moderation::new(Action::Grant, &name("bob"), &alice)
            },
        ),
        by_alice(
            room,
            Moderation {
                until: Some(later),
                ..Moderation::new(Action::Mute, &name("bob"), &alice)
            },
        ),
        by_alice(
            room,
            Moderation {
                role: Some(Role::Member),
                ..Moderation::new(Action::Grant, &name("carol"), &alice)
            },
        ),
        by_alice(
            room,
            Moderation {
                reason: Some("spam".into()),
                ..Moderation::new(Action::Ban, &name("carol"), &alice)
            },
        ),
        by_alice(room, Moderation::new(Action::Revoke, &alice, &alice)),
        by_alice(room, Moderation::new(Action::Unban, &name("dave"), &alice)),
    ];
    let stored = writer.append(actions).await.unwrap();
    assert_eq!(
        seqs_of(&stored),
        [
            Ok(1),
            Ok(2),
            Ok(3),
            Ok(4),
            Err(Refused::LastOwner),
            Err(Refused::NoChange("they are not banned"))
        ]
    );

    let enter =
        |who: &str, session| NewEvent::enter(room, name(who), session).acting_as(Authority::Signed);
    let entered = writer
        .write(
            vec![enter("bob", 1), enter("carol", 2), enter("dave", 3)],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        seqs_of(&entered.events),
        [Ok(5), Err(Refused::Banned), Err(Refused::RoomGone)]
    );
    let bob = entered.standings[0].expect("an ENTER learns its standing");
    assert!(bob.private && bob.muted_at(Timestamp::now()));

    let store = &db.storage.store;
    let (_, place) = store.admission(room, "bob").await.unwrap().unwrap();
    assert_eq!(place.role, Some(Role::Member));
    assert_eq!(place.mute.and_then(|mute| mute.until), Some(later));
    let roles: Vec<(String, Role)> = store
        .roles(room)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".to_owned(), Role::Owner),
            ("bob".to_owned(), Role::Member),
            ("carol".to_owned(), Role::Member)
        ]
    );
    let history = db.seqs(room).await;
    assert_eq!(history, [1, 2, 3, 4, 5], "refusals stored nothing");

    db.storage.writer.delete_room(room).await.unwrap();
    assert!(
        db.storage.store.roles(room).await.unwrap().is_empty(),
        "roles go with the room"
    );
    let bans = db
        .storage
        .store
        .sanctions(room, super::SanctionKind::Ban, Timestamp::now());
    assert!(bans.await.unwrap().is_empty());
}
