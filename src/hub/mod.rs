//! Who is in which room on this instance, fan-out of stored events to them, and the writer that
//! stores events before they are fanned out.
//!
//! The registry is a `DashMap` from room to its members, so rooms on different shards never
//! contend and fan-out takes one shard read lock. Each member is a bounded queue
//! ([`MemberHandle`]) drained by its session task: fan-out never waits on a member. An event is
//! serialized once; every member gets a clone of the same bytes.

mod queue;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;

use crate::domain::{Event, RoomId};
use crate::metrics::Metrics;

pub use queue::{MemberHandle, MemberQueue, Outbound, member_queue};
pub use writer::{AppendReply, AppendSlot, BatchLimits, WriteError, Writer};

pub type SessionId = u64;

/// Where the writer hands what it has stored, in `seq` order. The in-process [`Hub`] is the
/// single-instance implementation; a broker-backed one plugs in here for several instances.
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
        let Some(json) = event.to_json() else { return };
        let frame = bytestring::ByteString::from(json);
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
        for member in members.values() {
            member.deliver(Outbound::Closed { room_id }, &self.metrics);
        }
    }
}
