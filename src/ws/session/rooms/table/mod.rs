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
mod tests;
