//! Who is in which room on this instance, and fan-out of stored events to them.
//!
//! The registry is a `DashMap` from room to its members, so rooms on different shards never
//! contend and fan-out takes one shard read lock. Each member is a bounded queue
//! ([`MemberHandle`]) drained by its session task: fan-out never waits on a member. An event is
//! serialized once; every member gets a clone of the same bytes. When a room gains its first
//! member here or loses its last, the hub says so, so that a cluster subscribes to the rooms
//! this instance has members in, and only those. Notices (TYPING, READ) go to the same
//! queues as they come, outside the rooms' order; each room keeps when each sender last
//! typed, so typing notices reach its members at most once a second per sender.

mod outbound;
mod queue;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::Notify;

use crate::domain::{Event, Notice, RoomId, Seq};
use crate::metrics::Metrics;

pub use outbound::{Outbound, SharedEvent, SharedNotice};
pub use queue::{MemberHandle, MemberQueue, member_queue};

/// A sender's typing notices reach a room's members at most this often.
const TYPING_EVERY: Duration = Duration::from_secs(1);
/// How many senders' typing times a room keeps before it forgets those over a second old.
const TYPING_KEPT: usize = 64;

pub use crate::domain::SessionId;

/// Where the writer hands what it has stored, in `seq` order per room. The in-process [`Hub`]
/// is the single-instance implementation; the cluster's broker-backed one plugs in here for
/// several instances.
pub trait Fanout: Send + Sync + 'static {
    /// What one batch stored, in the order it was stored.
    fn publish(&self, events: &[Event]);
    /// The room was deleted; `last_seq` is its newest event, which members get before `CLOSED`.
    fn close_room(&self, room_id: RoomId, last_seq: Seq);
    /// A notice for the room's readers on every instance, but the session `from` (if given).
    fn notify(&self, notice: &Notice, from: Option<SessionId>);
}

/// Told when a room loses its last member here, so that what is kept per room elsewhere (the
/// cluster's ordering of its events) lives exactly as long as the room has members here.
/// Called after the registry's lock is released.
pub trait EmptiedRooms: Send + Sync {
    fn emptied(&self, room_id: RoomId);
}

/// A room's members on this instance, and when each sender last typed in it.
#[derive(Default)]
struct Room {
    members: HashMap<SessionId, MemberHandle>,
    typed: HashMap<String, Instant>,
}

impl Room {
    /// Whether a typing notice from `sender` may go out now (and notes that it does).
    fn may_type(&mut self, sender: &str, now: Instant) -> bool {
        if self
            .typed
            .get(sender)
            .is_some_and(|last| now.duration_since(*last) < TYPING_EVERY)
        {
            return false;
        }
        if self.typed.len() >= TYPING_KEPT {
            self.typed
                .retain(|_, last| now.duration_since(*last) < TYPING_EVERY);
        }
        self.typed.insert(sender.to_owned(), now);
        true
    }
}

pub struct Hub {
    rooms: DashMap<RoomId, Room>,
    emptied: OnceLock<Weak<dyn EmptiedRooms>>,
    /// Members closed for falling behind, fan-out times, notices.
    metrics: Arc<Metrics>,
    /// Woken when the set of rooms with members here changes.
    changed: Notify,
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            rooms: DashMap::new(),
            emptied: OnceLock::new(),
            metrics,
            changed: Notify::new(),
        }
    }

    /// Tells `watcher` whenever a member's leaving empties a room (set once).
    pub fn on_emptied(&self, watcher: Weak<dyn EmptiedRooms>) {
        let _ = self.emptied.set(watcher);
    }

    pub fn join(&self, room_id: RoomId, session: SessionId, member: MemberHandle) {
        match self.rooms.entry(room_id) {
            Entry::Occupied(mut room) => {
                room.get_mut().members.insert(session, member);
            }
            Entry::Vacant(room) => {
                room.insert(Room {
                    members: HashMap::from([(session, member)]),
                    typed: HashMap::new(),
                });
                self.changed.notify_one();
            }
        }
    }

    pub fn leave(&self, room_id: RoomId, session: SessionId) {
        if let Some(mut room) = self.rooms.get_mut(&room_id) {
            room.members.remove(&session);
        }
        let emptied = self
            .rooms
            .remove_if(&room_id, |_, room| room.members.is_empty());
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
        let Some(room) = self.rooms.get(&event.room_id) else {
            return;
        };
        let started = Instant::now();
        let Some(shared) = SharedEvent::new(event) else {
            return;
        };
        for member in room.members.values() {
            let item = Outbound::Event(shared.clone());
            member.deliver(item, &self.metrics.slow_consumers);
        }
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics.fanout_seconds.observe(elapsed);
    }

    /// Queues a notice for every member of its room here but `from`; false when a typing
    /// notice came within a second of that sender's last in the room (it is dropped).
    pub fn notice(&self, notice: &Notice, from: Option<SessionId>) -> bool {
        let Some(mut room) = self.rooms.get_mut(&notice.room_id()) else {
            return false;
        };
        let kind = match notice {
            Notice::Typing { sender, .. } => {
                if !room.may_type(sender, Instant::now()) {
                    self.metrics.notice("typing", false);
                    return false;
                }
                "typing"
            }
            Notice::Read { .. } => "read",
        };
        let Some(json) = notice.to_json() else {
            return false;
        };
        let shared = SharedNotice::new(notice.room_id(), json);
        let others = room
            .members
            .iter()
            .filter(|(session, _)| Some(**session) != from);
        for (_, member) in others {
            let item = Outbound::Notice(shared.clone());
            member.deliver(item, &self.metrics.slow_consumers);
        }
        self.metrics.notice(kind, true);
        true
    }

    /// Detaches every member here from a deleted room, telling each `CLOSED`. (Whoever closes
    /// a room forgets what it keeps for it: no [`EmptiedRooms`] call.)
    pub fn close(&self, room_id: RoomId, last_seq: Seq) {
        let Some((_, room)) = self.rooms.remove(&room_id) else {
            return;
        };
        self.changed.notify_one();
        for member in room.members.values() {
            let closed = Outbound::Closed(Box::new((room_id, last_seq)));
            member.deliver(closed, &self.metrics.slow_consumers);
        }
    }
}

/// On one instance, the writer hands events over in order, so every event before `CLOSED`
/// has been delivered when it comes.
impl Fanout for Hub {
    fn publish(&self, events: &[Event]) {
        for event in events {
            self.deliver(event);
        }
    }

    fn close_room(&self, room_id: RoomId, last_seq: Seq) {
        self.close(room_id, last_seq);
    }

    fn notify(&self, notice: &Notice, from: Option<SessionId>) {
        self.notice(notice, from);
    }
}
