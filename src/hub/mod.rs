//! Who is in which room on this instance, and fan-out of stored events to them.
//!
//! The registry is a `DashMap` from room to its members, so rooms on different shards never
//! contend and fan-out takes one shard read lock. Each member is a bounded queue
//! ([`Outbound`]) drained by its session task: fan-out only ever `try_send`s, so a session whose
//! queue is full is told to close with 1013 and never holds up anyone else. An event is
//! serialized once; every member gets a clone of the same bytes.

pub mod sequencer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytestring::ByteString;
use dashmap::DashMap;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

use crate::domain::{Event, RoomId};
use crate::metrics::Metrics;
use crate::ws::protocol::{ServerFrame, encode};

pub type SessionId = u64;

/// A frame queued for one session.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A stored event; the session skips it if it already sent that `seq` during a replay.
    Event {
        room_id: RoomId,
        seq: i64,
        frame: ByteString,
    },
    /// The room was deleted; the session is already detached from it.
    Closed { room_id: RoomId, frame: ByteString },
}

/// How fan-out reaches one session: its queue, and the signal that it fell behind.
#[derive(Debug, Clone)]
pub struct MemberHandle {
    queue: mpsc::Sender<Outbound>,
    slow: CancellationToken,
}

impl MemberHandle {
    pub fn new(queue: mpsc::Sender<Outbound>, slow: CancellationToken) -> Self {
        Self { queue, slow }
    }

    fn deliver(&self, item: Outbound, metrics: &Metrics) {
        match self.queue.try_send(item) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                if !self.slow.is_cancelled() {
                    metrics.slow_consumers.inc();
                    self.slow.cancel();
                }
            }
        }
    }
}

/// Where the sequencer hands what it has stored, in `seq` order. The in-process [`Hub`] is
/// the single-instance implementation; a broker-backed one plugs in here for several instances.
pub trait Fanout: Send + Sync + 'static {
    fn publish(&self, event: &Event);
    fn close_room(&self, room_id: RoomId);
}

pub struct Hub {
    rooms: DashMap<RoomId, HashMap<SessionId, MemberHandle>>,
    metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            rooms: DashMap::new(),
            metrics,
        }
    }

    pub fn join(&self, room_id: RoomId, session: SessionId, member: MemberHandle) {
        self.rooms
            .entry(room_id)
            .or_default()
            .insert(session, member);
    }

    pub fn leave(&self, room_id: RoomId, session: SessionId) {
        if let Some(mut members) = self.rooms.get_mut(&room_id) {
            members.remove(&session);
        }
        self.rooms
            .remove_if(&room_id, |_, members| members.is_empty());
    }

    pub fn member_count(&self, room_id: RoomId) -> usize {
        self.rooms.get(&room_id).map_or(0, |members| members.len())
    }

    /// Rooms with at least one member on this instance.
    pub fn active_rooms(&self) -> usize {
        self.rooms.len()
    }
}

impl Fanout for Hub {
    fn publish(&self, event: &Event) {
        let Some(members) = self.rooms.get(&event.room_id) else {
            return;
        };
        let started = Instant::now();
        let Some(frame) = encode(event) else { return };
        for member in members.values() {
            let item = Outbound::Event {
                room_id: event.room_id,
                seq: event.seq,
                frame: frame.clone(),
            };
            member.deliver(item, &self.metrics);
        }
        self.metrics
            .fanout_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    fn close_room(&self, room_id: RoomId) {
        let Some((_, members)) = self.rooms.remove(&room_id) else {
            return;
        };
        let Some(frame) = encode(&ServerFrame::Closed { room_id }) else {
            return;
        };
        for member in members.values() {
            let item = Outbound::Closed {
                room_id,
                frame: frame.clone(),
            };
            member.deliver(item, &self.metrics);
        }
    }
}
