//! Who is in which room on this instance, and fan-out of stored events to them.
//!
//! The registry is a `DashMap` from room to its members, so rooms on different shards never
//! contend and fan-out takes one shard read lock. Each member is a bounded queue
//! ([`MemberHandle`]) drained by its session task: fan-out never waits on a member. An event is
//! serialized once; every member gets a clone of the same bytes. When a room gains its first
//! member here or loses its last, the hub says so, so that a cluster subscribes to the rooms
//! this instance has members in, and only those.

mod queue;

use std::collections::HashMap;
use std::sync::{OnceLock, Weak};
use std::time::Instant;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::Notify;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::domain::{Event, RoomId, Seq};

pub use queue::{MemberHandle, MemberQueue, Outbound, SharedEvent, member_queue};

pub use crate::domain::SessionId;

/// Where the writer hands what it has stored, in `seq` order per room. The in-process [`Hub`]
/// is the single-instance implementation; the cluster's broker-backed one plugs in here for
/// several instances.
pub trait Fanout: Send + Sync + 'static {
    fn publish(&self, event: &Event);
    /// The room was deleted; `last_seq` is its newest event, which members get before `CLOSED`.
    fn close_room(&self, room_id: RoomId, last_seq: Seq);
}

/// Told when a room loses its last member here, so that what is kept per room elsewhere (the
/// cluster's ordering of its events) lives exactly as long as the room has members here.
/// Called after the registry's lock is released.
pub trait EmptiedRooms: Send + Sync {
    fn emptied(&self, room_id: RoomId);
}

pub struct Hub {
    rooms: DashMap<RoomId, HashMap<SessionId, MemberHandle>>,
    emptied: OnceLock<Weak<dyn EmptiedRooms>>,
    /// Members closed for falling behind.
    slow_consumers: Counter,
    /// How long queueing one event for every member of its room takes.
    fanout_seconds: Histogram,
    /// Woken when the set of rooms with members here changes.
    changed: Notify,
}

impl Hub {
    pub fn new(slow_consumers: Counter, fanout_seconds: Histogram) -> Self {
        Self {
            rooms: DashMap::new(),
            emptied: OnceLock::new(),
            slow_consumers,
            fanout_seconds,
            changed: Notify::new(),
        }
    }

    /// Tells `watcher` whenever a member's leaving empties a room (set once).
    pub fn on_emptied(&self, watcher: Weak<dyn EmptiedRooms>) {
        let _ = self.emptied.set(watcher);
    }

    pub fn join(&self, room_id: RoomId, session: SessionId, member: MemberHandle) {
        match self.rooms.entry(room_id) {
            Entry::Occupied(mut members) => {
                members.get_mut().insert(session, member);
            }
            Entry::Vacant(room) => {
                room.insert(HashMap::from([(session, member)]));
                self.changed.notify_one();
            }
        }
    }

    pub fn leave(&self, room_id: RoomId, session: SessionId) {
        if let Some(mut members) = self.rooms.get_mut(&room_id) {
            members.remove(&session);
        }
        let emptied = self
            .rooms
            .remove_if(&room_id, |_, members| members.is_empty());
        if emptied.is_some() {
            self.changed.notify_one();
            if let Some(watcher) = self.emptied.get().and_then(Weak::upgrade) {
                watcher.emptied(room_id);
            }
        }
    }

    pub fn has_members(&self, room_id: RoomId) -> bool {
        self.rooms.contains_key(&room_id)
    }

    /// How many rooms have at least one member on this instance.
    pub fn active_rooms(&self) -> usize {
        self.rooms.len()
    }

    /// The rooms with at least one member on this instance.
    pub fn active_room_ids(&self) -> Vec<RoomId> {
        self.rooms.iter().map(|room| *room.key()).collect()
    }

    /// Resolves once the set of rooms with members here has changed since the last call.
    pub async fn rooms_changed(&self) {
        self.changed.notified().await;
    }
}

impl Hub {
    /// Queues a stored event for every member of its room here.
    pub fn deliver(&self, event: &Event) {
        let Some(members) = self.rooms.get(&event.room_id) else {
            return;
        };
        let started = Instant::now();
        let Some(shared) = SharedEvent::new(event) else {
            return;
        };
        for member in members.values() {
            let item = Outbound::Event(shared.clone());
            member.deliver(item, &self.slow_consumers);
        }
        self.fanout_seconds.observe(started.elapsed().as_secs_f64());
    }

    /// Detaches every member here from a deleted room, telling each `CLOSED`. (Whoever closes
    /// a room forgets what it keeps for it: no [`EmptiedRooms`] call.)
    pub fn close(&self, room_id: RoomId, last_seq: Seq) {
        let Some((_, members)) = self.rooms.remove(&room_id) else {
            return;
        };
        self.changed.notify_one();
        for member in members.values() {
            let closed = Outbound::Closed { room_id, last_seq };
            member.deliver(closed, &self.slow_consumers);
        }
    }
}

/// On one instance, the writer hands events over in order, so every event before `CLOSED`
/// has been delivered when it comes.
impl Fanout for Hub {
    fn publish(&self, event: &Event) {
        self.deliver(event);
    }

    fn close_room(&self, room_id: RoomId, last_seq: Seq) {
        self.close(room_id, last_seq);
    }
}
