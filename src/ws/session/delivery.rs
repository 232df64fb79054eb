//! Events on their way to the client: live ones from the session's queue, a batch at a time,
//! and stored ones a catch-up read; notices (TYPING, READ) as they come; and the first copy of
//! a resent TALK. The room table says which pass and who reads each; the dialect says how: the
//! JSON itself for a `/ws/chat` member, a `MESSAGE` carrying it for each STOMP subscription
//! (the JSON is made once per event, whatever the readers).

use bytestring::ByteString;
use futures_util::FutureExt;
use uuid::Uuid;

use super::rooms::{Decision, Done, Reader, Target};
use super::{Dialect, Session};
use crate::domain::{Event, RoomId, Seq};
use crate::hub::{Outbound, SharedEvent, SharedNotice};
use crate::store::StoreError;
use crate::ws::dialect::chat::{closed_frame, duplicate_frame, removed_frame, truncated_frame};
use crate::ws::dialect::stomp::message_tail;
use crate::ws::transport::close::End;

/// Most queued items forwarded in one turn of the loop, and so in one write.
const FORWARD_BATCH: usize = 64;

impl Session {
    /// Forwards a queued item and whatever else is queued already, up to a batch, so that
    /// they go out in one write.
    pub(super) fn forward_queued(&mut self, first: Outbound) -> Result<(), End> {
        self.forward(first)?;
        for _ in 1..FORWARD_BATCH {
            let Some(item) = self.queue.try_recv() else {
                break;
            };
            self.forward(item)?;
        }
        self.send_resent();
        Ok(())
    }

    /// In a room entered with `"echo": false`, settles every request whose answer has come.
    /// The writer answers a batch's requests before it fans out any of its events, so once an
    /// event is here, the session's own request that stored it has its answer too: settling
    /// first tells which of its TALKs the member takes as an ACK, whatever it queued before
    /// them. (Elsewhere the order of the two does not matter, and costs nothing.)
    fn settle_answered(&mut self, room_id: RoomId) -> Result<(), End> {
        if self.in_flight.is_empty() || self.presence.table().echoes(room_id) {
            return Ok(());
        }
        while let Some(Some(settled)) = self.in_flight.next().now_or_never() {
            self.settle(settled)?;
        }
        Ok(())
    }

    fn forward(&mut self, item: Outbound) -> Result<(), End> {
        match item {
            Outbound::Event(event) => {
                let (room_id, seq) = (event.room_id, event.seq);
                self.settle_answered(room_id)?;
                self.unwritten_since.get_or_insert(event.fanned_out);
                if self.presence.table_mut().live(room_id, seq) == Decision::Deliver {
                    let targets = self.presence.table_mut().targets(room_id, seq);
                    self.send_event(&event, targets);
                    self.obey(&event);
                    self.done_with(room_id);
                }
            }
            Outbound::Notice(notice) => self.send_notice(&notice),
            Outbound::Closed(closed) => {
                let (room_id, last_seq) = *closed;
                self.presence.table_mut().close(room_id, last_seq);
                self.done_with(room_id);
            }
        }
        Ok(())
    }

    fn send_notice(&mut self, notice: &SharedNotice) {
        for reader in self.presence.table().notice_readers(notice.room_id) {
            match (&self.dialect, &reader) {
                (Dialect::Stomp(_), Reader::Subscription { head, .. }) => {
                    let tail = notice.stomp_tail(|notice| {
                        message_tail(&notice.message_id.to_string(), None, &notice.json)
                    });
                    self.socket.text_parts(head, tail);
                }
                _ => self.socket.text(notice.json.clone()),
            }
        }
    }

    /// The first copy of a resent TALK, marked `"duplicate": true`, to the room's readers.
    pub(super) fn send_duplicate(&mut self, first: &Event, readers: &[Reader]) {
        let frame = duplicate_frame(first, true);
        for reader in readers {
            match (&self.dialect, reader) {
                (Dialect::Stomp(_), Reader::Subscription { head, .. }) => {
                    let message_id = first.message_id.to_string();
                    let tail = message_tail(&message_id, Some(first.seq), &frame);
                    self.socket.text_parts(head, &tail);
                }
                _ => self.socket.text(frame.clone()),
            }
        }
    }

    /// Sends the events of a page that the client has not had yet. A page read from where the
    /// room's catch-up no longer starts (a repeated ENTER with `lastSeq` moved it back, or the
    /// session left) is dropped; the next read starts from where it is now.
    pub(super) fn replay(
        &mut self,
        room_id: RoomId,
        after: Seq,
        page: Result<Vec<Event>, StoreError>,
    ) -> Result<(), End> {
        let events = page.map_err(|error| {
            tracing::error!(%error, "reading history for a catch-up failed");
            End::Unavailable
        })?;
        if self.presence.table().behind_in(room_id) != Some(after) {
            return Ok(());
        }
        if events.is_empty() {
            self.presence.table_mut().give_up(room_id);
        }
        let mut next = after.next();
        for event in events {
            let targets = self.presence.table_mut().replayed(room_id, event.seq);
            // The room's retention erased what lies between: say so before what follows.
            if next.is_some_and(|next| event.seq > next) {
                let readers: Vec<Reader> = targets.iter().map(|t| t.reader.clone()).collect();
                self.send_unnumbered(&readers, &truncated_frame(room_id, event.seq));
            }
            next = event.seq.next();
            if targets.is_empty() && event.moderation.is_none() {
                continue;
            }
            if let Some(shared) = SharedEvent::new(&event) {
                self.send_event(&shared, targets);
                self.obey(&shared);
            }
        }
        self.done_with(room_id);
        self.send_resent();
        Ok(())
    }

    /// A MODERATION event about this session's identity, once delivered: its standing in the
    /// room follows it, and a kick, a ban or a revoke in a private room takes the session out
    /// of the room at once (`REMOVED`, then a stored LEAVE).
    fn obey(&mut self, event: &SharedEvent) {
        let Some(moderation) = event.moderation.as_deref() else {
            return;
        };
        let about_me = self
            .speaker
            .signed_as
            .as_ref()
            .is_some_and(|name| name.as_str() == moderation.target);
        if !about_me {
            return;
        }
        let table = self.presence.table_mut();
        let Some(removal) = table.ruled(event.room_id, event.seq, moderation) else {
            return;
        };
        let room_id = event.room_id;
        let readers = self.presence.evict(room_id);
        let frame = removed_frame(room_id, removal);
        match &self.dialect {
            Dialect::Chat => self.socket.text(frame),
            Dialect::Stomp(_) => self.send_unnumbered(&readers, &frame),
        }
        self.state.metrics.removed(removal.as_str());
        tracing::info!(%room_id, reason = removal.as_str(), "session removed from a room");
    }

    /// One event for its readers, each framed as the dialect says: the event's JSON itself, or
    /// a STOMP subscription's head and the MESSAGE tail every subscription shares.
    fn send_event(&mut self, event: &SharedEvent, targets: Vec<Target>) {
        for target in targets.into_iter().filter(|target| !target.muted) {
            match (&self.dialect, &target.reader) {
                (Dialect::Stomp(_), Reader::Subscription { head, .. }) => {
                    let tail = event.stomp_tail(|event| {
                        let message_id = event.message_id.to_string();
                        message_tail(&message_id, Some(event.seq), &event.json)
                    });
                    self.socket.text_parts(head, tail);
                }
                _ => self.socket.text(event.json.clone()),
            }
            self.state.metrics.events_out.inc();
        }
    }

    /// Drops a room the session is done with: a leaver's that has had every event before its
    /// LEAVE (and nobody here reads it), or a deleted room's once every event through its last
    /// was sent, then `CLOSED` to each of its readers.
    pub(super) fn done_with(&mut self, room_id: RoomId) {
        match self.presence.table().done(room_id) {
            Done::No => {}
            Done::Left => self.presence.remove(room_id),
            Done::Closed(readers) => {
                self.presence.remove(room_id);
                self.send_unnumbered(&readers, &closed_frame(room_id));
            }
        }
    }

    /// A frame about a room that is no event (`CLOSED`, `TRUNCATED`) to its readers: on STOMP a
    /// MESSAGE without a `seq`.
    fn send_unnumbered(&mut self, readers: &[Reader], frame: &ByteString) {
        for reader in readers {
            match (&self.dialect, reader) {
                (Dialect::Stomp(_), Reader::Subscription { head, .. }) => {
                    let message_id = Uuid::new_v4().to_string();
                    self.socket
                        .text_parts(head, &message_tail(&message_id, None, frame));
                }
                _ => self.socket.text(frame.clone()),
            }
        }
    }
}
