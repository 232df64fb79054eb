//! What a batch finds stored: resends answered with the first copy, batches past one
//! statement's rows, reactions counted per TALK.

use super::*;

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

pub(super) async fn a_resent_talk_is_answered_with_the_first_and_stored_once(mut db: Db) {
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
pub(super) async fn a_batch_larger_than_a_statement_is_stored_whole_and_finds_every_resend(
    mut db: Db,
) {
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
pub(super) async fn reactions_to_one_talk_in_one_batch_count_its_emoji_once(mut db: Db) {
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

pub(super) async fn racing_resends_on_two_instances_store_one_talk(mut db: Db) {
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
