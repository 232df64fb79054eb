//! The rooms one session is in: the sender it entered each with, whether its ENTER or LEAVE is
//! still being stored, and where its cursor stands in each room's stream ([`Cursor`]). A plain type: no I/O.

use std::collections::HashMap;

use super::cursor::{Cursor, Decision};
use crate::domain::{RoomId, Sender, Seq};
use crate::ws::protocol::WsError;

/// A room's state for this session.
#[derive(Debug)]
struct Room {
    sender: Sender,
    phase: Phase,
    cursor: Cursor,
    /// The room was deleted after this seq: `CLOSED` follows once every event through it has
    /// been sent.
    closing: Option<Seq>,
}

impl Room {
    /// Where a catch-up must read after: only a member reads, and a leaver only what came
    /// before its LEAVE.
    fn behind(&self) -> Option<Seq> {
        let behind = self.cursor.behind();
        match self.phase {
            Phase::Present | Phase::Leaving => behind,
            Phase::Left { at } => behind.filter(|delivered| *delivered < at.prev()),
            Phase::Entering { .. } => None,
        }
    }

    /// A leaver that has had every event before its LEAVE.
    fn finished(&self) -> bool {
        matches!(self.phase, Phase::Left { at } if self.cursor.delivered_through(at.prev()))
    }

    /// A deleted room whose every event through its last has been sent.
    fn closed(&self) -> bool {
        self.closing
            .is_some_and(|last| self.cursor.delivered_through(last))
    }

    /// The room was deleted after `last`: read up to there, then announce it.
    fn close_after(&mut self, last: Seq) {
        self.cursor.hold(last);
        self.closing = Some(last);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Its ENTER is being stored. Live events wait for its seq: the session gets its own ENTER
    /// and what follows (with a `lastSeq`, a replay first), even when events of several
    /// instances arrive out of order. `closed` records a deletion (after that seq) to announce
    /// once the ENTER is known to have been stored.
    Entering {
        resume_after: Option<Seq>,
        closed: Option<Seq>,
    },
    Present,
    /// Its LEAVE is being stored; events still flow, and it stays if the LEAVE fails.
    Leaving,
    /// Its LEAVE was stored at `at`: it gets the events before that, then leaves the room.
    Left {
        at: Seq,
    },
}

/// Whether the session is done with a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    No,
    /// It left and has had every event before its LEAVE: drop the room.
    Left,
    /// The room was deleted and the session has had every event through its last: announce
    /// `CLOSED` and drop the room.
    Closed,
}

#[derive(Debug, Default)]
pub struct RoomTable {
    rooms: HashMap<RoomId, Room>,
}

impl RoomTable {
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn sender(&self, room_id: RoomId) -> Option<&Sender> {
        self.rooms.get(&room_id).map(|room| &room.sender)
    }

    /// Checks that the session is in the room under this sender, before it TALKs, LEAVEs or
    /// ENTERs again.
    pub fn check(
        &self,
        room_id: RoomId,
        sender: &Sender,
        action: &'static str,
    ) -> Result<(), WsError> {
        let room = self
            .rooms
            .get(&room_id)
            .filter(|room| room.phase == Phase::Present)
            .ok_or(WsError::NotInRoom(room_id, action))?;
        if room.sender != *sender {
            return Err(WsError::SenderMismatch {
                room_id,
                entered: room.sender.as_str().to_owned(),
            });
        }
        Ok(())
    }

    /// Whether an ENTER or LEAVE is under way; the session reads no frame until it is done.
    pub fn changing(&self) -> bool {
        self.rooms.values().any(|room| room.phase != Phase::Present)
    }

    pub(super) fn enter(&mut self, room_id: RoomId, sender: Sender, resume_after: Option<Seq>) {
        let room = Room {
            sender,
            phase: Phase::Entering {
                resume_after,
                closed: None,
            },
            cursor: Cursor::unanchored(),
            closing: None,
        };
        self.rooms.insert(room_id, room);
    }

    /// Its ENTER was stored at `seq`. (A room no longer in the table needs nothing more.)
    pub fn entered(&mut self, room_id: RoomId, seq: Seq) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        let Phase::Entering {
            resume_after,
            closed,
        } = room.phase
        else {
            return;
        };
        room.cursor.anchor(seq, resume_after);
        room.phase = Phase::Present;
        if let Some(last) = closed {
            room.close_after(last);
        }
    }

    pub fn leaving(&mut self, room_id: RoomId) {
        self.set_phase(room_id, Phase::Leaving);
    }

    /// Its LEAVE was stored at `seq`: it gets the events before it, and nothing from its LEAVE
    /// on (see [`RoomTable::done`]).
    pub fn left(&mut self, room_id: RoomId, seq: Seq) {
        self.set_phase(room_id, Phase::Left { at: seq });
    }

    /// Whether the session is done with the room.
    pub fn done(&self, room_id: RoomId) -> Done {
        match self.rooms.get(&room_id) {
            Some(room) if room.finished() => Done::Left,
            Some(room) if room.closed() => Done::Closed,
            _ => Done::No,
        }
    }

    /// Its LEAVE could not be stored: the session is still in the room.
    pub fn stay(&mut self, room_id: RoomId) {
        self.set_phase(room_id, Phase::Present);
    }

    fn set_phase(&mut self, room_id: RoomId, phase: Phase) {
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.phase = phase;
        }
    }

    /// Decides what to do with a live event.
    pub fn live(&mut self, room_id: RoomId, seq: Seq) -> Decision {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return Decision::Skip;
        };
        match room.phase {
            Phase::Present | Phase::Leaving => room.cursor.live(seq),
            Phase::Left { at } if seq < at => room.cursor.live(seq),
            // Its own LEAVE or later: not for it, but proof that every event before its LEAVE
            // is stored, should one have been missed.
            Phase::Left { at } => {
                room.cursor.hold(at.prev());
                Decision::Skip
            }
            Phase::Entering { .. } => room.cursor.hold(seq),
        }
    }

    /// The room was deleted after `last_seq`. A member announces it once it has had every
    /// event through `last_seq` (a replay may still be sending them; see [`RoomTable::done`]);
    /// one whose ENTER is pending, once its ENTER is stored; a leaver at once.
    pub fn close(&mut self, room_id: RoomId, last_seq: Seq) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        match &mut room.phase {
            Phase::Entering { closed, .. } => *closed = Some(last_seq),
            Phase::Left { .. } => room.closing = Some(Seq::ZERO),
            Phase::Present | Phase::Leaving => room.close_after(last_seq),
        }
    }

    /// Sends the room's events after `after` again.
    pub fn rewind(&mut self, room_id: RoomId, after: Seq) {
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.cursor.rewind(after);
        }
    }

    /// A room this session is in whose stored events it must read, and the seq to read after.
    pub fn behind(&self) -> Option<(RoomId, Seq)> {
        self.rooms
            .iter()
            .find_map(|(room_id, room)| room.behind().map(|after| (*room_id, after)))
    }

    /// The seq this room's stored events must be read after, if it is behind.
    pub fn behind_in(&self, room_id: RoomId) -> Option<Seq> {
        self.rooms.get(&room_id).and_then(Room::behind)
    }

    /// A stored event read by a catch-up: true when it must be sent.
    pub fn replayed(&mut self, room_id: RoomId, seq: Seq) -> bool {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return false;
        };
        let wanted = match room.phase {
            Phase::Present | Phase::Leaving => true,
            Phase::Left { at } => seq < at,
            Phase::Entering { .. } => false,
        };
        wanted && room.cursor.replayed(seq)
    }

    /// The catch-up found nothing more in storage: a deleted room's history is gone (skip to
    /// its end); any other room's later seqs were never stored (forget them).
    pub fn give_up(&mut self, room_id: RoomId) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        match room.closing {
            Some(last) => room.cursor.skip_through(last),
            None => room.cursor.storage_ends_here(),
        }
    }

    /// Puts the session in a room as if its ENTER had been stored at seq 1.
    #[cfg(test)]
    pub fn enter_for_test(&mut self, room_id: RoomId, sender: &str) {
        self.enter(room_id, Sender::parse(sender).unwrap(), None);
        self.entered(room_id, Seq::ZERO.next().unwrap());
    }

    pub(super) fn remove(&mut self, room_id: RoomId) -> Option<Sender> {
        self.rooms.remove(&room_id).map(|room| room.sender)
    }

    /// Empties the table; each room comes with the sender its LEAVE must be stored under, or
    /// None when its LEAVE is stored already or the room was deleted. A LEAVE still being
    /// stored gets another: the first may fail with nobody left to hear it, and storage
    /// refuses the second if the first went through (nobody leaves twice).
    pub(super) fn drain(&mut self) -> Vec<(RoomId, Option<Sender>)> {
        self.rooms
            .drain()
            .map(|(room_id, room)| {
                let gone = matches!(room.phase, Phase::Left { .. }) || room.closing.is_some();
                (room_id, (!gone).then_some(room.sender))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(raw: i64) -> Seq {
        Seq::new(raw).unwrap()
    }

    fn alice() -> Sender {
        Sender::parse("alice").unwrap()
    }

    fn entered(resume_after: Option<Seq>, enter_seq: i64) -> (RoomTable, RoomId) {
        let mut table = RoomTable::default();
        let room = RoomId::random();
        table.enter(room, alice(), resume_after);
        table.entered(room, seq(enter_seq));
        assert_eq!(table.done(room), Done::No);
        (table, room)
    }

    #[test]
    fn no_frame_is_read_while_an_enter_or_leave_is_pending() {
        let mut table = RoomTable::default();
        let room = RoomId::random();
        table.enter(room, alice(), None);
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
        table.enter(room, alice(), None);
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
        table.enter(room, alice(), None);
        assert_eq!(table.live(room, seq(7)), Decision::Hold, "before its ENTER");
        table.entered(room, seq(8));
        assert_eq!(table.behind(), None, "nothing after its ENTER was held");
        assert_eq!(table.live(room, seq(8)), Decision::Deliver);

        let other = RoomId::random();
        table.enter(other, alice(), None);
        assert_eq!(
            table.live(other, seq(5),),
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
        table.enter(room, alice(), Some(seq(2)));
        assert_eq!(table.live(room, seq(6)), Decision::Hold);
        assert_eq!(table.behind(), None, "no replay before the ENTER is stored");
        table.entered(room, seq(6));
        assert_eq!(table.behind(), Some((room, seq(2))));
        assert_eq!(table.behind_in(room), Some(seq(2)));
        assert!((3..=6).all(|s| table.replayed(room, seq(s))));
        assert_eq!(table.behind(), None);
        assert_eq!(table.live(room, seq(7)), Decision::Deliver);
    }

    #[test]
    fn a_leaver_gets_every_event_before_its_leave_and_none_from_it_on() {
        let (mut table, room) = entered(None, 1);
        assert_eq!(table.live(room, seq(1)), Decision::Deliver);
        table.leaving(room);
        assert_eq!(table.live(room, seq(2)), Decision::Deliver);
        table.left(room, seq(4));
        assert_eq!(table.done(room), Done::No, "seq 3 came before its LEAVE");
        assert!(table.changing());
        assert_eq!(table.live(room, seq(3)), Decision::Deliver);
        assert_eq!(table.done(room), Done::Left);
        assert_eq!(table.live(room, seq(4)), Decision::Skip, "its own LEAVE");
    }

    #[test]
    fn a_leaver_that_missed_an_event_before_its_leave_reads_it_from_storage() {
        let (mut table, room) = entered(None, 1);
        table.live(room, seq(1));
        table.leaving(room);
        table.left(room, seq(3));
        assert_eq!(table.done(room), Done::No);
        assert_eq!(table.live(room, seq(3)), Decision::Skip);
        assert_eq!(table.behind(), Some((room, seq(1))));
    }

    #[test]
    fn a_leaver_behind_catches_up_only_to_its_leave() {
        let (mut table, room) = entered(None, 1);
        assert_eq!(table.live(room, seq(1)), Decision::Deliver);
        assert_eq!(table.live(room, seq(3)), Decision::Hold);
        table.leaving(room);
        table.left(room, seq(3));
        assert_eq!(table.behind(), Some((room, seq(1))));
        assert!(table.replayed(room, seq(2)));
        assert!(!table.replayed(room, seq(3)));
        assert_eq!(table.done(room), Done::Left);
    }

    #[test]
    fn a_member_whose_leave_failed_stays_and_keeps_its_place() {
        let (mut table, room) = entered(None, 1);
        table.live(room, seq(1));
        table.leaving(room);
        assert_eq!(table.live(room, seq(2)), Decision::Deliver);
        table.stay(room);
        assert!(!table.changing());
        assert_eq!(table.behind(), None);
        assert_eq!(table.live(room, seq(3)), Decision::Deliver);
    }

    #[test]
    fn a_deletion_during_the_enter_waits_for_its_outcome() {
        let mut table = RoomTable::default();
        let room = RoomId::random();
        table.enter(room, alice(), None);
        table.close(room, seq(3));
        assert_eq!(table.done(room), Done::No);
        table.entered(room, seq(3));
        assert_eq!(table.done(room), Done::No, "its own ENTER comes first");
        assert_eq!(table.behind(), Some((room, seq(2))));
        assert!(table.replayed(room, seq(3)));
        assert_eq!(table.done(room), Done::Closed);

        let (mut other, present) = entered(None, 1);
        assert_eq!(other.live(present, seq(1)), Decision::Deliver);
        other.close(present, seq(1));
        assert_eq!(other.done(present), Done::Closed);
        other.close(RoomId::random(), seq(1));
    }

    #[test]
    fn a_deletion_during_a_replay_is_announced_after_the_rooms_last_event() {
        let mut table = RoomTable::default();
        let room = RoomId::random();
        table.enter(room, alice(), Some(Seq::ZERO));
        table.entered(room, seq(100));
        assert!(table.replayed(room, seq(1)));

        table.close(room, seq(100));
        assert_eq!(table.done(room), Done::No, "99 events are still to be sent");
        assert_eq!(table.behind(), Some((room, seq(1))));
        assert!((2..=100).all(|s| table.replayed(room, seq(s))));
        assert_eq!(table.done(room), Done::Closed);
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
        assert_eq!(table.done(room), Done::Closed);
    }

    #[test]
    fn events_of_rooms_it_is_not_in_are_dropped() {
        let mut table = RoomTable::default();
        assert_eq!(table.live(RoomId::random(), seq(1)), Decision::Skip);
        assert!(!table.replayed(RoomId::random(), seq(1)));
    }

    #[test]
    fn removing_and_draining_hand_back_each_sender() {
        let (mut table, room) = entered(None, 1);
        assert_eq!(table.remove(room), Some(alice()));
        assert_eq!(table.len(), 0);
        let (mut table, room) = entered(None, 1);
        assert_eq!(table.drain(), vec![(room, Some(alice()))]);
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
        entering.enter(room, alice(), None);

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
}
