//! The rooms one session deals with, and who on its connection reads each room's events. A
//! plain type: no I/O.
//!
//! A room is in the table while the session is a member of it (its ENTER is being stored,
//! stored, or its LEAVE is being stored), or reads it, or both. What the session reads goes
//! through one [`Cursor`] per room, so every event passes once, in `seq` order; each reader on
//! the connection is a [`Feed`] that takes the events it has not had. A `/ws/chat` member
//! reads its room through a feed of its own that starts at its ENTER (or its `lastSeq`) and
//! ends right before its LEAVE; a STOMP client reads through its subscriptions, whether or not
//! it entered.

mod reading;
mod rules;

use std::collections::{BTreeSet, HashMap};

use super::room::{Feed, Member, Phase, Room};
pub use super::room::{Reader, Reading, Target};
use crate::domain::{RoomId, Sender, Seq};
use crate::ws::dialect::chat::WsError;

/// Whether the session is done with a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    No,
    /// It left (and has had every event before its LEAVE) and reads the room no more: drop it.
    Left,
    /// The room was deleted and every event through its last has been sent: announce `CLOSED`
    /// to these readers and drop the room.
    Closed(Vec<Reader>),
}

#[derive(Debug, Default)]
pub struct RoomTable {
    /// Boxed: a map allocates room for four entries at its first, and most sessions are in
    /// one room.
    rooms: HashMap<RoomId, Box<Room>>,
    reading: Reading,
}

impl RoomTable {
    pub fn new(reading: Reading) -> Self {
        Self {
            rooms: HashMap::new(),
            reading,
        }
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn contains(&self, room_id: RoomId) -> bool {
        self.rooms.contains_key(&room_id)
    }

    /// The sender it entered the room with, while it is a member.
    pub fn sender(&self, room_id: RoomId) -> Option<&Sender> {
        let member = self.rooms.get(&room_id)?.member.as_ref()?;
        (member.phase != Phase::Left).then_some(&member.sender)
    }

    /// Checks that the session is in the room under this sender, before it TALKs, LEAVEs or
    /// ENTERs again.
    pub fn check(
        &self,
        room_id: RoomId,
        sender: &Sender,
        action: &'static str,
    ) -> Result<(), WsError> {
        self.present(room_id, sender, action).map(drop)
    }

    /// The room, when the session is in it under this sender.
    fn present(
        &self,
        room_id: RoomId,
        sender: &Sender,
        action: &'static str,
    ) -> Result<&Room, WsError> {
        let room = self.rooms.get(&room_id).map(Box::as_ref);
        let member = room
            .and_then(|room| room.member.as_ref())
            .filter(|member| member.phase == Phase::Present)
            .ok_or(WsError::NotInRoom(room_id, action))?;
        if member.sender != *sender {
            return Err(WsError::SenderMismatch {
                room_id,
                entered: member.sender.as_str().to_owned(),
            });
        }
        room.ok_or(WsError::NotInRoom(room_id, action))
    }

    /// Whether an ENTER or LEAVE is under way; the session reads no frame until it is done.
    pub fn changing(&self) -> bool {
        self.rooms
            .values()
            .any(|room| matches!(room.phase(), Some(Phase::Entering { .. } | Phase::Leaving)))
    }

    /// Its ENTER is queued. A room it already reads keeps its cursor; its own ENTER reaches it
    /// there.
    pub(super) fn enter(
        &mut self,
        room_id: RoomId,
        sender: Sender,
        resume_after: Option<Seq>,
        echo: bool,
    ) {
        let room = self.rooms.entry(room_id).or_insert_with(Room::new);
        room.member = Some(Member {
            sender,
            phase: Phase::Entering {
                resume_after,
                closed: None,
            },
            echo,
            muted: BTreeSet::new(),
        });
    }

    /// Its ENTER was stored at `seq`. (A room no longer in the table needs nothing more.)
    pub fn entered(&mut self, room_id: RoomId, seq: Seq) {
        let reading = self.reading;
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        let Some(Phase::Entering {
            resume_after,
            closed,
        }) = room.phase()
        else {
            return;
        };
        if !room.cursor.is_anchored() {
            room.cursor.anchor(seq, resume_after);
        }
        if reading == Reading::Members {
            // Its own ENTER first, or what follows its `lastSeq` (one past the ENTER counts as
            // the newest).
            let before = seq.prev();
            room.member_feed_after(resume_after.map_or(before, |after| after.min(before)));
        }
        if let Some(member) = room.member.as_mut() {
            member.phase = Phase::Present;
        }
        if let Some(last) = closed {
            room.close_after(last);
        }
    }

    /// Switches whether the member's own TALKs come back in full (a repeated ENTER with
    /// `echo`).
    pub fn set_echo(&mut self, room_id: RoomId, echo: bool) {
        if let Some(member) = self.member_mut(room_id) {
            member.echo = echo;
        }
    }

    /// Whether the member's own TALKs come back to it in full in this room (else as an `ACK`).
    pub fn echoes(&self, room_id: RoomId) -> bool {
        self.rooms
            .get(&room_id)
            .and_then(|room| room.member.as_ref())
            .is_none_or(|member| member.echo)
    }

    /// The room's readers once none of them waits for the event at `seq` any more (each has
    /// had it, or reads no further); None while one still does. A room the session does not
    /// read has none.
    pub fn readers_past(&self, room_id: RoomId, seq: Seq) -> Option<Vec<Reader>> {
        let Some(room) = self.rooms.get(&room_id) else {
            return Some(Vec::new());
        };
        if room.feeds.iter().any(|feed| feed.wants(seq)) {
            return None;
        }
        Some(room.feeds.iter().map(|feed| feed.reader.clone()).collect())
    }

    /// Who on the connection takes the room's notices (TYPING, READ): a member whose ENTER is
    /// stored and whose LEAVE is not, and each subscription that asked for them.
    pub fn notice_readers(&self, room_id: RoomId) -> Vec<Reader> {
        let Some(room) = self.rooms.get(&room_id) else {
            return Vec::new();
        };
        let present = room
            .member
            .as_ref()
            .is_some_and(|member| matches!(member.phase, Phase::Present | Phase::Leaving));
        room.feeds
            .iter()
            .filter(|feed| feed.until.is_none())
            .filter(|feed| match &feed.reader {
                Reader::Member => present,
                Reader::Subscription { notices, .. } => *notices,
            })
            .map(|feed| feed.reader.clone())
            .collect()
    }

    /// Its TALK was stored at `seq`: true when the member takes an `ACK` for it, and not the
    /// event.
    pub fn talked(&mut self, room_id: RoomId, seq: Seq) -> bool {
        let Some(member) = self.member_mut(room_id) else {
            return false;
        };
        if !member.echo {
            member.muted.insert(seq);
        }
        !member.echo
    }

    pub fn leaving(&mut self, room_id: RoomId) {
        self.set_phase(room_id, Phase::Leaving);
    }

    /// Its LEAVE was stored at `seq`: a member reads the events before it, and nothing from
    /// its LEAVE on (see [`RoomTable::done`]).
    pub fn left(&mut self, room_id: RoomId, seq: Seq) {
        self.set_phase(room_id, Phase::Left);
        if let Some(room) = self.rooms.get_mut(&room_id) {
            let current = |feed: &&mut Feed| feed.reader == Reader::Member && feed.until.is_none();
            for feed in room.feeds.iter_mut().filter(current) {
                feed.until = Some(seq);
            }
        }
    }

    /// Its LEAVE could not be stored: the session is still in the room.
    pub fn stay(&mut self, room_id: RoomId) {
        self.set_phase(room_id, Phase::Present);
    }

    fn member_mut(&mut self, room_id: RoomId) -> Option<&mut Member> {
        self.rooms.get_mut(&room_id)?.member.as_mut()
    }

    fn set_phase(&mut self, room_id: RoomId, phase: Phase) {
        if let Some(member) = self.member_mut(room_id) {
            member.phase = phase;
        }
    }

    /// Puts the session in a room as if its ENTER had been stored at seq 1.
    #[cfg(test)]
    pub fn enter_for_test(&mut self, room_id: RoomId, sender: &str) {
        self.enter(room_id, Sender::parse(sender).unwrap(), None, true);
        self.entered(room_id, Seq::ZERO.next().unwrap());
    }

    pub(super) fn remove(&mut self, room_id: RoomId) {
        self.rooms.remove(&room_id);
    }

    /// Takes a room out: who on the connection read it, and the sender its LEAVE must be
    /// stored under (as [`RoomTable::drain`] says).
    pub(super) fn take(&mut self, room_id: RoomId) -> (Vec<Reader>, Option<Sender>) {
        let Some(room) = self.rooms.remove(&room_id) else {
            return (Vec::new(), None);
        };
        let readers = room.feeds.iter().map(|feed| feed.reader.clone()).collect();
        (readers, leaver(*room))
    }

    /// Empties the table; each room comes with the sender its LEAVE must be stored under, or
    /// None when the session is no member, its LEAVE is stored already, or the room was
    /// deleted. A LEAVE still being stored gets another: the first may fail with nobody left
    /// to hear it, and storage refuses the second if the first went through (nobody leaves
    /// twice).
    pub(super) fn drain(&mut self) -> Vec<(RoomId, Option<Sender>)> {
        self.rooms
            .drain()
            .map(|(room_id, room)| (room_id, leaver(*room)))
            .collect()
    }
}

/// The sender a room's LEAVE must be stored under, as the session lets go of it: None when it
/// is no member, its LEAVE is stored already, or the room was deleted.
fn leaver(room: Room) -> Option<Sender> {
    let closing = room.closing.is_some();
    room.member
        .filter(|member| member.phase != Phase::Left && !closing)
        .map(|member| member.sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::session::rooms::Decision;

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

    fn subscription(id: &str) -> Reader {
        Reader::Subscription {
            id: id.to_owned().into(),
            head: format!("MESSAGE\nsubscription:{id}\n").into(),
            notices: true,
        }
    }

    /// Whether the member is sent the live event at `seq`.
    fn sends(table: &mut RoomTable, room: RoomId, seq_: i64) -> bool {
        table.live(room, seq(seq_)) == Decision::Deliver
            && table.targets(room, seq(seq_)) == member()
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

    #[test]
    fn subscriptions_read_a_room_without_entering_it_each_from_where_it_starts() {
        let mut table = RoomTable::new(Reading::Subscriptions);
        let room = RoomId::random();
        table.watch_from(room, seq(10));
        table.subscribe(room, subscription("s-1"), None);
        assert!(!table.changing());
        assert_eq!(table.sender(room), None, "subscribing enters nothing");
        assert_eq!(table.live(room, seq(11)), Decision::Deliver);
        assert_eq!(table.targets(room, seq(11)).len(), 1);

        table.subscribe(room, subscription("s-2"), Some(seq(9)));
        assert_eq!(table.behind(), Some((room, seq(9))), "s-2 replays from 9");
        let replayed = table.replayed(room, seq(10));
        assert_eq!(replayed.len(), 1, "only s-2 had not had 10");
        let both = table.replayed(room, seq(11));
        assert_eq!(both.len(), 1, "s-1 had 11 already");
        assert_eq!(table.live(room, seq(12)), Decision::Deliver);
        assert_eq!(table.targets(room, seq(12)).len(), 2);

        assert!(table.subscribed("s-1"));
        assert_eq!(table.unsubscribe("s-1"), Some(room));
        assert!(!table.subscribed("s-1"));
        assert_eq!(table.unsubscribe("s-2"), Some(room));
        assert_eq!(table.done(room), Done::Left, "nobody reads it now");
    }

    #[test]
    fn entering_on_stomp_reads_nothing_and_a_subscription_keeps_reading_after_leave() {
        let mut table = RoomTable::new(Reading::Subscriptions);
        let room = RoomId::random();
        table.enter(room, alice(), None, true);
        table.entered(room, seq(5));
        assert_eq!(
            table.behind(),
            None,
            "nobody reads it: nothing to catch up on"
        );
        assert_eq!(table.live(room, seq(5)), Decision::Deliver);
        assert!(table.targets(room, seq(5)).is_empty());
        assert_eq!(table.done(room), Done::No, "it is a member");

        table.subscribe(room, subscription("s"), None);
        table.leaving(room);
        table.left(room, seq(6));
        assert_eq!(table.live(room, seq(6)), Decision::Deliver);
        assert_eq!(
            table.targets(room, seq(6)).len(),
            1,
            "its subscription sees its LEAVE"
        );
        assert_eq!(table.done(room), Done::No, "still subscribed");
        assert_eq!(table.drain(), vec![(room, None)], "its LEAVE is stored");
    }
}
