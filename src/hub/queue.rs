//! One session's outbound queue, bounded in events and in bytes. Fan-out only ever tries to
//! queue: a session whose queue is full by either bound is signalled to close with 1013 and
//! never holds up anyone else, and no reader, however slow, makes the server hold more than
//! the byte bound of events for it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytestring::ByteString;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

use uuid::Uuid;

use crate::domain::{Event, Moderation, RoomId, Seq};

/// What a `CLOSED` notice counts for against the byte bound.
const CLOSED_BYTES: usize = 64;

/// A stored event as its readers receive it, made once and shared by every session it goes
/// to: its JSON (the whole of a `/ws/chat` frame, the body of a STOMP `MESSAGE`) and, made by
/// the first STOMP reader that needs it, the end of such a `MESSAGE`: everything but the
/// headers that name the subscription.
#[derive(Debug)]
pub struct SharedEvent {
    pub room_id: RoomId,
    pub seq: Seq,
    pub message_id: Uuid,
    pub json: ByteString,
    /// When fan-out made it, for the `written` stage.
    pub fanned_out: Instant,
    /// A MODERATION event's details, for the sessions it is about.
    pub moderation: Option<Box<Moderation>>,
    stomp_tail: OnceLock<ByteString>,
}

impl SharedEvent {
    /// None when the event cannot be serialized (logged).
    pub fn new(event: &Event) -> Option<Arc<Self>> {
        Some(Arc::new(Self {
            room_id: event.room_id,
            seq: event.seq,
            message_id: event.message_id,
            json: event.to_json()?.into(),
            fanned_out: Instant::now(),
            moderation: event.moderation.clone(),
            stomp_tail: OnceLock::new(),
        }))
    }

    /// The end of a STOMP `MESSAGE` carrying this event, made at most once.
    pub fn stomp_tail(&self, make: impl FnOnce(&Self) -> ByteString) -> &ByteString {
        self.stomp_tail.get_or_init(|| make(self))
    }
}

/// A notice (TYPING, READ) as its readers receive it, shared like [`SharedEvent`]; as a STOMP
/// `MESSAGE` it has a `message-id` of its own and no `seq`.
#[derive(Debug)]
pub struct SharedNotice {
    pub room_id: RoomId,
    pub message_id: Uuid,
    pub json: ByteString,
    stomp_tail: OnceLock<ByteString>,
}

impl SharedNotice {
    pub fn new(room_id: RoomId, json: String) -> Arc<Self> {
        Arc::new(Self {
            room_id,
            message_id: Uuid::new_v4(),
            json: json.into(),
            stomp_tail: OnceLock::new(),
        })
    }

    /// The end of a STOMP `MESSAGE` carrying this notice, made at most once.
    pub fn stomp_tail(&self, make: impl FnOnce(&Self) -> ByteString) -> &ByteString {
        self.stomp_tail.get_or_init(|| make(self))
    }
}

/// A frame queued for one session.
#[derive(Debug, Clone)]
pub enum Outbound {
    Event(Arc<SharedEvent>),
    /// Not an event: delivered to the room's readers as it comes, outside its order.
    Notice(Arc<SharedNotice>),
    /// The room was deleted after `last_seq`; the hub has already detached the session from
    /// it. The session announces it once it has sent every event through `last_seq`. Boxed,
    /// as it is rare: every variant is then one pointer, and each session's queue allocates
    /// room for 32 of them up front (512 bytes, not 1 KiB).
    Closed(Box<(RoomId, Seq)>),
}

impl Outbound {
    fn bytes(&self) -> usize {
        match self {
            Self::Event(event) => event.json.len(),
            Self::Notice(notice) => notice.json.len(),
            Self::Closed(_) => CLOSED_BYTES,
        }
    }
}

/// A new session's queue: the handle fan-out delivers through, and the end the session drains.
pub fn member_queue(events: usize, bytes: usize) -> (MemberHandle, MemberQueue) {
    let (sender, receiver) = mpsc::channel(events);
    let queued = Arc::new(AtomicUsize::new(0));
    let slow = CancellationToken::new();
    let handle = MemberHandle {
        sender,
        queued: queued.clone(),
        max_bytes: bytes,
        slow: slow.clone(),
    };
    let queue = MemberQueue {
        receiver,
        queued,
        slow,
    };
    (handle, queue)
}

/// How fan-out reaches one session.
#[derive(Debug, Clone)]
pub struct MemberHandle {
    sender: mpsc::Sender<Outbound>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
    slow: CancellationToken,
}

impl MemberHandle {
    pub(super) fn deliver(&self, item: Outbound, slow_consumers: &Counter) {
        let bytes = item.bytes();
        if self.queued.fetch_add(bytes, Ordering::AcqRel) + bytes > self.max_bytes {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return self.fell_behind(slow_consumers);
        }
        match self.sender.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Closed(_)) => {
                self.queued.fetch_sub(bytes, Ordering::AcqRel);
            }
            Err(TrySendError::Full(_)) => {
                self.queued.fetch_sub(bytes, Ordering::AcqRel);
                self.fell_behind(slow_consumers);
            }
        }
    }

    fn fell_behind(&self, slow_consumers: &Counter) {
        if !self.slow.is_cancelled() {
            slow_consumers.inc();
            self.slow.cancel();
        }
    }
}

/// The session's end of its queue.
#[derive(Debug)]
pub struct MemberQueue {
    receiver: mpsc::Receiver<Outbound>,
    queued: Arc<AtomicUsize>,
    slow: CancellationToken,
}

impl MemberQueue {
    pub async fn recv(&mut self) -> Option<Outbound> {
        let item = self.receiver.recv().await?;
        self.queued.fetch_sub(item.bytes(), Ordering::AcqRel);
        Some(item)
    }

    /// The next item if one is queued already.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let item = self.receiver.try_recv().ok()?;
        self.queued.fetch_sub(item.bytes(), Ordering::AcqRel);
        Some(item)
    }

    /// Cancelled once the queue overflowed: the session must close with 1013.
    pub fn slow(&self) -> &CancellationToken {
        &self.slow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(bytes: usize) -> Outbound {
        Outbound::Event(Arc::new(SharedEvent {
            room_id: RoomId::random(),
            seq: Seq::ZERO,
            message_id: Uuid::nil(),
            json: "x".repeat(bytes).into(),
            fanned_out: Instant::now(),
            moderation: None,
            stomp_tail: OnceLock::new(),
        }))
    }

    #[tokio::test]
    async fn a_queue_over_its_byte_bound_signals_slow_and_keeps_what_fit() {
        let metrics = Counter::default();
        let (handle, mut queue) = member_queue(100, 1000);

        handle.deliver(event(600), &metrics);
        handle.deliver(event(600), &metrics);

        assert!(queue.slow().is_cancelled());
        assert!(
            matches!(queue.recv().await, Some(Outbound::Event(event)) if event.json.len() == 600)
        );
        assert!(
            queue.receiver.try_recv().is_err(),
            "the second event was not queued"
        );
    }

    #[tokio::test]
    async fn draining_the_queue_frees_its_bytes() {
        let metrics = Counter::default();
        let (handle, mut queue) = member_queue(100, 1000);
        for _ in 0..10 {
            handle.deliver(event(600), &metrics);
            queue.recv().await;
        }
        assert!(!queue.slow().is_cancelled());
    }

    #[tokio::test]
    async fn a_queue_over_its_event_bound_signals_slow() {
        let metrics = Counter::default();
        let (handle, queue) = member_queue(2, 1000);
        for _ in 0..3 {
            handle.deliver(event(1), &metrics);
        }
        assert!(queue.slow().is_cancelled());
    }
}
