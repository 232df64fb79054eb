//! The appends (and read markers) taken together into one transaction, and how big that may
//! get.

use std::time::Instant;

use crate::domain::{Event, EventKind, NewEvent, ReadMarker, RoomId, Standing};
use crate::store::{Delivered, Marks};

use super::{AppendError, AppendSender, Appended, ReadSender, Stored};

/// Most appends taken into one transaction.
const MAX_BATCH: usize = 512;
/// What an event's JSON adds to its text (names, ids, timestamp), for sizing batches.
const EVENT_OVERHEAD_BYTES: usize = 192;

/// How big one batch may get. A batch may hold that many events of one room, all queued for
/// each member at once: kept to half a session queue, in events and in bytes, a member that
/// keeps up is never mistaken for a slow one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub events: usize,
    pub bytes: usize,
}

impl BatchLimits {
    pub fn for_session_queue(events: usize, bytes: usize) -> Self {
        Self {
            events: (events / 2).clamp(1, MAX_BATCH),
            bytes: (bytes / 2).max(1),
        }
    }
}

/// Where the outcome of one append goes.
pub struct Reply {
    pub room_id: RoomId,
    /// When its append entered the writer's queue.
    pub queued: Instant,
    sender: AppendSender,
    /// A LEAVE, kept to be stored later should it fail now with nobody to tell.
    leave: Option<NewEvent>,
}

impl Reply {
    /// Tells the session its event was stored (an ENTER's, with the sender's standing).
    pub fn stored(self, event: &Event, standing: Option<Standing>) {
        let _ = self.sender.send(Ok(Appended::Stored(Stored {
            seq: event.seq,
            message_id: event.message_id,
            sent_at: event.sent_at,
            standing,
        })));
    }

    /// Tells the session its TALK repeats `first`, which was stored before.
    pub fn duplicate(self, first: Box<Event>) {
        let _ = self.sender.send(Ok(Appended::Duplicate(first)));
    }

    /// Tells the session its append failed. A LEAVE that storage could not take and whose
    /// session is gone (nobody takes the refusal, and nobody else will store it) comes back,
    /// to be tried again.
    pub fn failed(self, error: AppendError) -> Option<NewEvent> {
        let untold = self.sender.send(Err(error)).is_err();
        (untold && error == AppendError::Unavailable)
            .then_some(self.leave)
            .flatten()
    }
}

/// Appends, read markers and webhook positions taken together into one transaction, with
/// where each reply goes.
#[derive(Default)]
pub struct Batch {
    pub events: Vec<NewEvent>,
    pub answers: Answers,
    bytes: usize,
}

/// Where the outcome of each append, read marker and webhook position of a batch goes, and
/// the markers and positions.
#[derive(Default)]
pub struct Answers {
    pub replies: Vec<Reply>,
    pub marks: Marks,
    pub read_replies: Vec<ReadSender>,
    pub position_replies: Vec<ReadSender>,
}

impl Batch {
    pub fn fits(&self, event: &NewEvent, limits: &BatchLimits) -> bool {
        self.events.is_empty() || self.bytes + size(event) <= limits.bytes
    }

    pub fn is_empty(&self) -> bool {
        let marks = &self.answers.marks;
        self.events.is_empty() && marks.reads.is_empty() && marks.positions.is_empty()
    }

    pub fn push_read(&mut self, marker: ReadMarker, reply: ReadSender) {
        self.answers.marks.reads.push(marker);
        self.answers.read_replies.push(reply);
    }

    pub fn push_position(&mut self, position: Delivered, reply: ReadSender) {
        self.answers.marks.positions.push(position);
        self.answers.position_replies.push(reply);
    }

    pub fn push(&mut self, event: NewEvent, sender: AppendSender, queued: Instant) {
        self.bytes += size(&event);
        let leave = (event.kind == EventKind::Leave).then(|| event.clone());
        self.answers.replies.push(Reply {
            room_id: event.room_id,
            queued,
            sender,
            leave,
        });
        self.events.push(event);
    }
}

fn size(event: &NewEvent) -> usize {
    event.text_bytes() + EVENT_OVERHEAD_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_never_exceeds_half_a_session_queue() {
        let limits = |events, bytes| BatchLimits::for_session_queue(events, bytes);
        assert_eq!(
            limits(1024, 4096),
            BatchLimits {
                events: 512,
                bytes: 2048
            }
        );
        assert_eq!(limits(64, 1).events, 32);
        assert_eq!(
            limits(1, 1),
            BatchLimits {
                events: 1,
                bytes: 1
            }
        );
        assert_eq!(limits(100_000, 1).events, 512);
    }
}
