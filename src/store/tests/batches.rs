//! Batches: seqs per room, refused events, deleted rooms and their purge, instances sharing
//! rooms, message ids.

use super::*;

pub(super) async fn a_batch_gives_each_room_consecutive_seqs_and_refuses_gone_rooms(mut db: Db) {
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

pub(super) async fn an_event_the_database_refuses_fails_alone_and_takes_no_seq(mut db: Db) {
    let (a, b) = (db.room("a").await, db.room("b").await);
    db.side(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.message = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.message = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .await;

    poison_is_refused_alone(&mut db, (a, b), 0).await;
}

/// A constraint (not a trigger) refusing an event in the middle of the batch's one INSERT:
/// the rows that statement wrote before it are not kept (on SQLite it is `OR FAIL`, which
/// leaves them in the transaction: the transaction is discarded), and the others are stored.
pub(super) async fn a_constraint_refusing_an_event_mid_statement_keeps_no_row_of_it(mut db: Db) {
    let (a, b) = (db.room("a").await, db.room("b").await);
    db.storage
        .writer
        .append(vec![talk(a, "poison")])
        .await
        .unwrap();
    let once = "CREATE UNIQUE INDEX poison ON events (message) WHERE message = 'poison'";
    db.side(once, once).await;

    poison_is_refused_alone(&mut db, (a, b), 1).await;
}

/// One batch: in `a` (whose newest seq is `after`) a TALK, a poisoned one and another, and one
/// in `b`, new. The poisoned one alone is refused; the others are stored, in order.
async fn poison_is_refused_alone(db: &mut Db, (a, b): (RoomId, RoomId), after: i64) {
    let batch = vec![
        talk(a, "ok"),
        talk(a, "poison"),
        talk(a, "ok"),
        talk(b, "ok"),
    ];
    let results = db.storage.writer.append(batch).await.unwrap();

    assert_eq!(
        seqs_of(&results),
        [Ok(after + 1), Err(Refused::Rejected), Ok(after + 2), Ok(1)]
    );
    assert_eq!(db.seqs(a).await, Vec::from_iter(1..=after + 2));
    assert_eq!(db.seqs(b).await, [1]);
}

pub(super) async fn a_batch_that_cannot_be_stored_at_all_fails_whole(mut db: Db) {
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

pub(super) async fn a_deleted_room_is_gone_at_once_and_its_events_after_a_delay_in_steps_even_across_a_restart(
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

pub(super) async fn a_room_is_never_stamped_before_the_newest_room(mut db: Db) {
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

pub(super) async fn a_replay_page_ends_once_its_text_reaches_the_byte_bound(mut db: Db) {
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

pub(super) async fn two_instances_appending_to_the_same_rooms_share_one_gap_free_order(mut db: Db) {
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

pub(super) async fn newest_seqs_are_given_for_rooms_that_exist(mut db: Db) {
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

pub(super) async fn a_deleted_rooms_last_seq_is_kept_while_its_events_are(mut db: Db) {
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

pub(super) async fn an_event_is_never_stored_twice_under_one_message_id(mut db: Db) {
    let room = db.room("r").await;
    db.talks(room, 1).await;
    let copy = "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
                SELECT room_id, seq + 1, message_id, kind, sender, message, client_msg_id, sent_at FROM events";

    assert!(db.try_side(copy, copy).await.is_err());
    assert_eq!(db.seqs(room).await, [1]);
}
