//! How the session reads its rooms: where each starts, which events go to whom, and how a
//! catch-up, a deletion or a rewind moves the cursor.

use super::{Done, RoomTable};
use crate::domain::{RoomId, Seq};
use crate::ws::session::rooms::cursor::Decision;
use crate::ws::session::rooms::room::{Feed, Phase, Reader, Room, Target};

impl RoomTable {
    /// A room whose events will be read once it is anchored: until then they wait.
    pub(in crate::ws::session::rooms) fn expect(&mut self, room_id: RoomId) {
        self.rooms.entry(room_id).or_insert_with(Room::new);
    }

    /// Starts reading a room it does not read yet, from right after `after` (the room's newest
    /// seq, or where a replay starts).
    pub fn watch_from(&mut self, room_id: RoomId, after: Seq) {
        let room = self.rooms.entry(room_id).or_insert_with(Room::new);
        if !room.cursor.is_anchored() {
            room.cursor.start_after(after);
        }
    }

    /// A subscription to a room the session reads already (see [`RoomTable::watch_from`]): it
    /// starts right after `after`, or with the next event.
    pub fn subscribe(&mut self, room_id: RoomId, reader: Reader, after: Option<Seq>) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        let now = room.cursor.position().unwrap_or(Seq::ZERO);
        let start = after.map_or(now, |after| after.min(now));
        if start < now {
            room.cursor.rewind(start);
        }
        room.read_from(reader, start);
    }

    /// Ends a subscription; the room it read, if it is done with it.
    pub fn unsubscribe(&mut self, id: &str) -> Option<RoomId> {
        let is_it = |feed: &Feed| matches!(&feed.reader, Reader::Subscription { id: other, .. } if &**other == id);
        let (room_id, room) = self
            .rooms
            .iter_mut()
            .find(|(_, room)| room.feeds.iter().any(is_it))?;
        room.feeds.retain(|feed| !is_it(feed));
        Some(*room_id)
    }

    /// Whether a subscription with this id exists.
    pub fn subscribed(&self, id: &str) -> bool {
        self.rooms.values().flat_map(|room| &room.feeds).any(
            |feed| matches!(&feed.reader, Reader::Subscription { id: other, .. } if &**other == id),
        )
    }

    /// Decides what to do with a live event; see [`RoomTable::targets`] for who reads it.
    pub fn live(&mut self, room_id: RoomId, seq: Seq) -> Decision {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return Decision::Skip;
        };
        if !room.cursor.is_anchored() {
            return room.cursor.hold(seq);
        }
        room.cursor.live(seq)
    }

    /// Who reads the event at `seq`, which has just passed the room's cursor.
    pub fn targets(&mut self, room_id: RoomId, seq: Seq) -> Vec<Target> {
        self.rooms
            .get_mut(&room_id)
            .map(|room| room.targets(seq))
            .unwrap_or_default()
    }

    /// The room was deleted after `last_seq`. Its readers are told once they have had every
    /// event through `last_seq` (a replay may still be sending them; see [`RoomTable::done`]);
    /// a member whose ENTER is pending, once its ENTER is stored.
    pub fn close(&mut self, room_id: RoomId, last_seq: Seq) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        match room.member.as_mut().map(|member| &mut member.phase) {
            Some(Phase::Entering { closed, .. }) if !room.cursor.is_anchored() => {
                *closed = Some(last_seq);
            }
            _ => room.close_after(last_seq),
        }
    }

    /// Whether the session is done with the room.
    pub fn done(&self, room_id: RoomId) -> Done {
        match self.rooms.get(&room_id) {
            Some(room) if room.closed() => {
                Done::Closed(room.feeds.iter().map(|feed| feed.reader.clone()).collect())
            }
            Some(room) if room.abandoned() => Done::Left,
            _ => Done::No,
        }
    }

    /// Sends the room's events after `after` again to the member (an ENTER with `lastSeq` in a
    /// room it is in).
    pub fn rewind(&mut self, room_id: RoomId, after: Seq) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        let current = room
            .feeds
            .iter()
            .filter(|feed| feed.reader == Reader::Member && feed.until.is_none())
            .map(|feed| feed.sent_through)
            .min();
        if let Some(sent_through) = current {
            room.member_feed_after(sent_through.min(after));
        }
    }

    /// A room whose stored events the session must read, and the seq to read after.
    pub fn behind(&self) -> Option<(RoomId, Seq)> {
        self.rooms
            .iter()
            .find_map(|(room_id, room)| room.behind().map(|after| (*room_id, after)))
    }

    /// The seq this room's stored events must be read after, if it is behind.
    pub fn behind_in(&self, room_id: RoomId) -> Option<Seq> {
        self.rooms.get(&room_id).and_then(|room| room.behind())
    }

    /// A stored event read by a catch-up: who reads it (none when nobody needs it).
    pub fn replayed(&mut self, room_id: RoomId, seq: Seq) -> Vec<Target> {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return Vec::new();
        };
        // The cursor passes it even when no reader wants it (a member's new feed may start
        // ahead of where an earlier one left the cursor), or the catch-up would read the same
        // page for ever.
        if !room.cursor.replayed(seq) {
            return Vec::new();
        }
        room.targets(seq)
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
}
