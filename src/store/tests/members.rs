//! Read markers and the members list.

use super::*;

/// A room's whole members list on one page; None when the room does not exist.
async fn all_members(db: &Db, room_id: RoomId) -> Option<MembersPage> {
    db.storage.store.members(room_id, None, 100).await.unwrap()
}

/// Read markers to store beside a batch.
fn reads(markers: &[ReadMarker]) -> Marks {
    Marks {
        reads: markers.to_vec(),
        positions: Vec::new(),
    }
}

fn marker(room_id: RoomId, sender: &str, seq: i64) -> ReadMarker {
    ReadMarker {
        room_id,
        sender: name(sender),
        seq: Seq::new(seq).unwrap(),
    }
}

pub(super) async fn a_read_marker_only_rises_and_never_past_the_newest_event(mut db: Db) {
    let room = db.room("r").await;
    db.talks(room, 5).await;
    let mut raise = async |markers: &[ReadMarker]| {
        let written = db.storage.writer.write(Vec::new(), &reads(markers)).await;
        let written = written.unwrap();
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
        .write(vec![talk(room, "6")], &reads(&[marker(room, "alice", 6)]))
        .await
        .unwrap();
    assert_eq!(
        written.reads,
        [Some(Seq::new(6).unwrap())],
        "with this batch's events"
    );
}

pub(super) async fn members_are_listed_per_sender_with_sessions_since_and_read_seq(mut db: Db) {
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
        .write(vec![], &reads(&[marker(room, "bob", 2)]))
        .await
        .unwrap();

    let page = all_members(&db, room).await.unwrap();

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
    let page = all_members(&db, room).await.unwrap();
    assert_eq!((page.as_of_seq.get(), page.items.len()), (4, 1));
    assert!(all_members(&db, RoomId::random()).await.is_none());
    let empty = db.room("empty").await;
    let page = all_members(&db, empty).await.unwrap();
    assert_eq!((page.as_of_seq, page.items.len()), (Seq::ZERO, 0));
}

pub(super) async fn the_members_list_pages_by_since_then_sender(mut db: Db) {
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
    let whole = all_members(&db, room).await.unwrap();
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
