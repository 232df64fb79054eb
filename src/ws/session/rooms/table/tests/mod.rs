//! The room table's rules, one interleaving of a member's phases and its room's events at a
//! time.

use super::*;
use crate::ws::session::rooms::Decision;

mod subscriptions;

fn seq(raw: i64) -> Seq {
    Seq::new(raw).unwrap()
}

fn alice() -> Sender {
    Sender::parse("alice").unwrap()
}

fn member() -> Vec<Target> {
    vec![Target {
        reader: Reader::Member,
        muted: false,
    }]
}

/// Whether the member is sent the live event at `seq`.
fn sends(table: &mut RoomTable, room: RoomId, seq_: i64) -> bool {
    table.live(room, seq(seq_)) == Decision::Deliver && table.targets(room, seq(seq_)) == member()
}

fn entered(resume_after: Option<Seq>, enter_seq: i64) -> (RoomTable, RoomId) {
    let mut table = RoomTable::default();
    let room = RoomId::random();
    table.enter(room, alice(), resume_after, true);
    table.entered(room, seq(enter_seq));
    assert_eq!(table.done(room), Done::No);
    (table, room)
}

#[test]
fn no_frame_is_read_while_an_enter_or_leave_is_pending() {
    let mut table = RoomTable::default();
    let room = RoomId::random();
    table.enter(room, alice(), None, true);
    assert!(table.changing());
    table.entered(room, seq(1));
    assert!(!table.changing());
    table.leaving(room);
    assert!(table.changing());
    table.stay(room);
    assert!(!table.changing());
}

#[test]
fn only_a_present_member_under_its_sender_may_talk() {
    let mut table = RoomTable::default();
    let room = RoomId::random();
    table.enter(room, alice(), None, true);
    assert!(matches!(
        table.check(room, &alice(), "TALK"),
        Err(WsError::NotInRoom(..))
    ));
    table.entered(room, seq(1));
    assert_eq!(table.check(room, &alice(), "TALK"), Ok(()));
    let bob = Sender::parse("bob").unwrap();
    assert!(matches!(
        table.check(room, &bob, "TALK"),
        Err(WsError::SenderMismatch { .. })
    ));
    table.leaving(room);
    assert!(matches!(
        table.check(room, &alice(), "TALK"),
        Err(WsError::NotInRoom(..))
    ));
    assert!(matches!(
        table.check(RoomId::random(), &alice(), "TALK"),
        Err(WsError::NotInRoom(..))
    ));
}

#[test]
fn without_last_seq_a_newcomer_starts_at_its_own_enter() {
    let mut table = RoomTable::default();
    let room = RoomId::random();
    table.enter(room, alice(), None, true);
    assert_eq!(table.live(room, seq(7)), Decision::Hold, "before its ENTER");
    table.entered(room, seq(8));
    assert_eq!(table.behind(), None, "nothing after its ENTER was held");
    assert!(sends(&mut table, room, 8));

    let other = RoomId::random();
    table.enter(other, alice(), None, true);
    assert_eq!(
        table.live(other, seq(5)),
        Decision::Hold,
        "after its ENTER, early"
    );
    table.entered(other, seq(4));
    assert_eq!(
        table.behind(),
        Some((other, seq(3))),
        "read in order from storage"
    );
}

#[test]
fn with_last_seq_events_wait_for_the_replay() {
    let mut table = RoomTable::default();
    let room = RoomId::random();
    table.enter(room, alice(), Some(seq(2)), true);
    assert_eq!(table.live(room, seq(6)), Decision::Hold);
    assert_eq!(table.behind(), None, "no replay before the ENTER is stored");
    table.entered(room, seq(6));
    assert_eq!(table.behind(), Some((room, seq(2))));
    assert_eq!(table.behind_in(room), Some(seq(2)));
    assert!((3..=6).all(|s| table.replayed(room, seq(s)) == member()));
    assert_eq!(table.behind(), None);
    assert!(sends(&mut table, room, 7));
}

#[test]
fn a_leaver_gets_every_event_before_its_leave_and_none_from_it_on() {
    let (mut table, room) = entered(None, 1);
    assert!(sends(&mut table, room, 1));
    table.leaving(room);
    assert!(sends(&mut table, room, 2));
    table.left(room, seq(4));
    assert_eq!(table.done(room), Done::No, "seq 3 came before its LEAVE");
    assert!(!table.changing());
    assert!(sends(&mut table, room, 3));
    assert_eq!(table.done(room), Done::Left);
    assert_eq!(table.live(room, seq(4)), Decision::Deliver);
    assert!(
        table.targets(room, seq(4)).is_empty(),
        "its own LEAVE is not sent"
    );
}

#[test]
fn a_leaver_behind_catches_up_only_to_its_leave() {
    let (mut table, room) = entered(None, 1);
    assert!(sends(&mut table, room, 1));
    assert_eq!(table.live(room, seq(3)), Decision::Hold);
    table.leaving(room);
    table.left(room, seq(3));
    assert_eq!(table.behind(), Some((room, seq(1))));
    assert_eq!(table.replayed(room, seq(2)), member());
    assert!(table.replayed(room, seq(3)).is_empty());
    assert_eq!(table.done(room), Done::Left);
}

#[test]
fn a_member_whose_leave_failed_stays_and_keeps_its_place() {
    let (mut table, room) = entered(None, 1);
    assert!(sends(&mut table, room, 1));
    table.leaving(room);
    assert!(sends(&mut table, room, 2));
    table.stay(room);
    assert!(!table.changing());
    assert_eq!(table.behind(), None);
    assert!(sends(&mut table, room, 3));
}

#[test]
fn a_deletion_during_the_enter_waits_for_its_outcome() {
    let mut table = RoomTable::default();
    let room = RoomId::random();
    table.enter(room, alice(), None, true);
    table.close(room, seq(3));
    assert_eq!(table.done(room), Done::No);
    table.entered(room, seq(3));
    assert_eq!(table.done(room), Done::No, "its own ENTER comes first");
    assert_eq!(table.behind(), Some((room, seq(2))));
    assert_eq!(table.replayed(room, seq(3)), member());
    assert_eq!(table.done(room), Done::Closed(vec![Reader::Member]));

    let (mut other, present) = entered(None, 1);
    assert!(sends(&mut other, present, 1));
    other.close(present, seq(1));
    assert_eq!(other.done(present), Done::Closed(vec![Reader::Member]));
    other.close(RoomId::random(), seq(1));
}

#[test]
fn a_deletion_during_a_replay_is_announced_after_the_rooms_last_event() {
    let mut table = RoomTable::default();
    let room = RoomId::random();
    table.enter(room, alice(), Some(Seq::ZERO), true);
    table.entered(room, seq(100));
    assert_eq!(table.replayed(room, seq(1)), member());

    table.close(room, seq(100));
    assert_eq!(table.done(room), Done::No, "99 events are still to be sent");
    assert_eq!(table.behind(), Some((room, seq(1))));
    assert!((2..=100).all(|s| table.replayed(room, seq(s)) == member()));
    assert_eq!(table.done(room), Done::Closed(vec![Reader::Member]));
    assert_eq!(
        table.drain(),
        vec![(room, None)],
        "no LEAVE for a deleted room"
    );
}

#[test]
fn a_deleted_room_whose_history_is_gone_is_announced_once_the_replay_gives_up() {
    let (mut table, room) = entered(Some(Seq::ZERO), 50);
    table.close(room, seq(50));
    table.give_up(room);
    assert_eq!(table.done(room), Done::Closed(vec![Reader::Member]));
}

#[test]
fn events_of_rooms_it_is_not_in_are_dropped() {
    let mut table = RoomTable::default();
    assert_eq!(table.live(RoomId::random(), seq(1)), Decision::Skip);
    assert!(table.replayed(RoomId::random(), seq(1)).is_empty());
}

#[test]
fn draining_asks_a_leave_of_every_room_whose_leave_is_not_stored() {
    let (mut table, leaving) = entered(None, 1);
    table.leaving(leaving);
    let (mut other, left) = entered(None, 1);
    other.leaving(left);
    other.left(left, seq(3));
    let mut entering = RoomTable::default();
    let room = RoomId::random();
    entering.enter(room, alice(), None, true);

    assert_eq!(
        table.drain(),
        vec![(leaving, Some(alice()))],
        "its LEAVE may still fail"
    );
    assert_eq!(other.drain(), vec![(left, None)], "its LEAVE is stored");
    assert_eq!(
        entering.drain(),
        vec![(room, Some(alice()))],
        "its ENTER is queued first"
    );
}

#[test]
fn a_member_with_echo_off_is_not_sent_its_own_talk() {
    let mut table = RoomTable::default();
    let room = RoomId::random();
    table.enter(room, alice(), None, false);
    table.entered(room, seq(1));
    assert!(sends(&mut table, room, 1));
    assert!(table.talked(room, seq(2)), "an ACK instead");
    assert_eq!(table.live(room, seq(2)), Decision::Deliver);
    assert_eq!(
        table.targets(room, seq(2)),
        vec![Target {
            reader: Reader::Member,
            muted: true
        }]
    );
    assert!(sends(&mut table, room, 3), "others' events still come");
    table.set_echo(room, true);
    assert!(!table.talked(room, seq(4)));
    assert!(sends(&mut table, room, 4));
}
