//! What fan-out queues for a session: stored events and notices, each made once and shared
//! by every session it goes to, and the notice that a room was deleted.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytestring::ByteString;
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

    /// An event of `bytes` bytes of JSON (not an event's JSON), for what counts its size.
    #[cfg(test)]
    pub(super) fn of_size(bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            room_id: RoomId::random(),
            seq: Seq::ZERO,
            message_id: Uuid::nil(),
            json: "x".repeat(bytes).into(),
            fanned_out: Instant::now(),
            moderation: None,
            stomp_tail: OnceLock::new(),
        })
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
    /// What it weighs against a session queue's byte bound.
    pub(super) fn bytes(&self) -> usize {
        match self {
            Self::Event(event) => event.json.len(),
            Self::Notice(notice) => notice.json.len(),
            Self::Closed(_) => CLOSED_BYTES,
        }
    }
}
