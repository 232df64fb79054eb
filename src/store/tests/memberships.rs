//! Memberships: what ENTER and LEAVE store, and a dead instance's members reaped.

use super::*;

pub(super) async fn memberships_follow_enter_and_leave_and_nobody_leaves_twice(mut db: Db) {
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

pub(super) async fn a_dead_instance_is_reaped_once_with_a_leave_for_each_member_a_bots_marked(
    mut db: Db,
) {
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
    // A minute of silence from both, as storage tells it, without waiting it out; then the
    // reaper beats again.
    db.side(
        "UPDATE instances SET heartbeat_at = heartbeat_at - 60000",
        "UPDATE instances SET heartbeat_at = heartbeat_at - interval '1 minute'",
    )
    .await;
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
