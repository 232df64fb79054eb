//! Puts each room's events back in `seq` order on this instance, whatever way they came: from
//! this instance's writer, from the broker (late, out of order, or not at all), or read from
//! storage. An event that arrives early waits; a gap not closed within [`GAP_WAIT`] is filled
//! from storage, one page at a time, once for the whole instance rather than once per member.
//!
//! A room's state lives exactly as long as this instance has members in it: it is made only
//! for a room with members (checked under the state's own lock), and dropped as the hub says
//! the room emptied, or once it is closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::holdback::{HoldBack, Out};
use crate::domain::{Event, RoomId, Seq};
use crate::hub::{EmptiedRooms, Hub};
use crate::metrics::Metrics;
use crate::store::{PageLimit, Store, StoreError};

/// How long an early event waits for the ones before it before they are read from storage:
/// longer than a publish takes to come through (about 5 ms on average under a saturating load,
/// per `chat_broker_delay_seconds`), short enough that a message the broker lost costs members
/// little. Measured with scripts/bench-cluster, 30 ms and 100 ms gave the same throughput and
/// p99, with a few dozen storage reads per instance in 10 s.
pub const GAP_WAIT: Duration = Duration::from_millis(30);
/// How much one read of a gap fill takes.
const FILL_PAGE: PageLimit = PageLimit {
    events: 256,
    bytes: 1 << 20,
};

pub struct Sequencer {
    rooms: DashMap<RoomId, HoldBack>,
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl Sequencer {
    pub fn new(hub: Arc<Hub>, store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<Self> {
        let sequencer = Arc::new(Self {
            rooms: DashMap::new(),
            hub: hub.clone(),
            store,
            metrics,
        });
        let watcher: Arc<dyn EmptiedRooms> = sequencer.clone();
        hub.on_emptied(Arc::downgrade(&watcher));
        sequencer
    }

    /// A stored event, for the members of its room here (if it has any).
    pub fn arrive(self: &Arc<Self>, event: Event) {
        let room_id = event.room_id;
        self.step(room_id, |room, out| room.arrive(event, out), GAP_WAIT);
    }

    /// The room was deleted after `last_seq`: members get `CLOSED` after every event before.
    pub fn close(self: &Arc<Self>, room_id: RoomId, last_seq: Seq) {
        self.step(room_id, |order, out| order.close(last_seq, out), GAP_WAIT);
    }

    /// Reads the newest seq of these rooms from storage and fills each up to it at once, even
    /// if no later event ever arrives (after subscribing, after a reconnect, and now and then).
    /// A room storage no longer has was deleted: its members get `CLOSED` after its last event
    /// (a resume under way still gets every event before it).
    pub async fn sync(self: Arc<Self>, rooms: Vec<RoomId>) {
        let (stored, deleted) = match self.newest(&rooms).await {
            Ok(newest) => newest,
            Err(error) => {
                tracing::warn!(%error, "reading the rooms' newest seqs failed; syncing later");
                return;
            }
        };
        for room_id in rooms {
            match (stored.get(&room_id), deleted.get(&room_id)) {
                (Some(&seq), _) => {
                    self.step(room_id, |order, _| order.stored_up_to(seq), Duration::ZERO)
                }
                // Purged and forgotten: nothing of it is left to read.
                (None, last) => {
                    let last = last.copied().unwrap_or(Seq::ZERO);
                    self.step(room_id, |order, out| order.close(last, out), Duration::ZERO)
                }
            }
        }
    }

    /// The newest seq of the rooms that exist, and the last of those deleted.
    async fn newest(
        &self,
        rooms: &[RoomId],
    ) -> Result<(HashMap<RoomId, Seq>, HashMap<RoomId, Seq>), StoreError> {
        let stored = self.store.last_seqs(rooms).await?;
        let gone: Vec<RoomId> = rooms
            .iter()
            .filter(|room_id| !stored.contains_key(room_id))
            .copied()
            .collect();
        if gone.is_empty() {
            return Ok((stored, HashMap::new()));
        }
        Ok((stored, self.store.deleted_last_seqs(&gone).await?))
    }

    /// Stops ordering a room; `if_empty`: only while it has no members here.
    fn forget(&self, room_id: RoomId, if_empty: bool) {
        let forgotten = self
            .rooms
            .remove_if(&room_id, |_, _| !if_empty || !self.hub.has_members(room_id));
        if forgotten.is_some() {
            self.counted();
        }
    }

    fn counted(&self) {
        let held = i64::try_from(self.rooms.len()).unwrap_or(i64::MAX);
        self.metrics.ordered_rooms.set(held);
    }

    /// Applies `change` to the room's order and hands what it releases to the members, all
    /// under the room's lock, so what two sources release for one room never interleaves; then
    /// schedules a fill in `wait` if events are missing.
    fn step(
        self: &Arc<Self>,
        room_id: RoomId,
        change: impl FnOnce(&mut HoldBack, &mut Vec<Out>),
        wait: Duration,
    ) {
        let mut out = Vec::new();
        let mut created = false;
        let fill = {
            let mut order = match self.rooms.entry(room_id) {
                Entry::Occupied(order) => order.into_ref(),
                Entry::Vacant(_) if !self.hub.has_members(room_id) => return,
                Entry::Vacant(room) => {
                    created = true;
                    room.insert(HoldBack::default())
                }
            };
            change(&mut order, &mut out);
            self.hand_on(room_id, &out);
            let due = order.missing_after().is_some() && !order.filling;
            order.filling |= due;
            due
        };
        if created {
            // Counted once the room's lock is released: counting reads every shard.
            self.counted();
        }
        self.after(room_id, &out);
        if fill {
            let sequencer = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                sequencer.fill(room_id).await;
            });
        }
    }

    fn hand_on(&self, room_id: RoomId, out: &[Out]) {
        for item in out {
            match item {
                Out::Event(event) => self.hub.deliver(event),
                Out::Closed(last_seq) => self.hub.close(room_id, *last_seq),
            }
        }
    }

    /// A closed room needs no order any more.
    fn after(&self, room_id: RoomId, out: &[Out]) {
        if out.iter().any(|item| matches!(item, Out::Closed(_))) {
            self.forget(room_id, false);
        }
    }

    /// Reads what the room misses from storage, a page at a time, until nothing is missing.
    async fn fill(self: Arc<Self>, room_id: RoomId) {
        while let Some(after) = self.next_gap(room_id) {
            self.metrics.gap_fills.inc();
            let read = self.read_after(room_id, after).await;
            let Some(out) = self.take_read(room_id, read) else {
                return;
            };
            self.after(room_id, &out);
        }
    }

    /// Where the room's first gap starts, if it has one (and it is still followed); marks
    /// the room as being filled while it has.
    fn next_gap(&self, room_id: RoomId) -> Option<Seq> {
        let mut order = self.rooms.get_mut(&room_id)?;
        let after = order.missing_after();
        order.filling = after.is_some();
        after
    }

    /// Puts what storage said into the room's order and hands on what is now in order; None
    /// when the room is no longer followed, or the read failed (the next sync retries).
    fn take_read(&self, room_id: RoomId, read: Result<Read, StoreError>) -> Option<Vec<Out>> {
        let mut order = self.rooms.get_mut(&room_id)?;
        let mut out = Vec::new();
        match read {
            Ok(Read::Events(events)) => {
                if let Some(first) = events.first() {
                    order.storage_resumes_at(first.seq, &mut out);
                }
                events
                    .into_iter()
                    .for_each(|event| order.arrive(event, &mut out));
            }
            Ok(Read::EndsAt(newest)) => order.storage_ends(newest, &mut out),
            Err(error) => {
                tracing::warn!(%error, %room_id, "filling a gap from storage failed; the next sync retries");
                order.filling = false;
                return None;
            }
        }
        self.hand_on(room_id, &out);
        Some(out)
    }
}

/// What storage holds after a seq.
enum Read {
    Events(Vec<Event>),
    /// Nothing after it; the room's newest seq (None: the room is gone).
    EndsAt(Option<Seq>),
}

impl Sequencer {
    async fn read_after(&self, room_id: RoomId, after: Seq) -> Result<Read, StoreError> {
        let events = self.store.page_after(room_id, after, FILL_PAGE).await?;
        if !events.is_empty() {
            return Ok(Read::Events(events));
        }
        let newest = self.store.last_seqs(&[room_id]).await?;
        Ok(Read::EndsAt(newest.get(&room_id).copied()))
    }
}

impl EmptiedRooms for Sequencer {
    fn emptied(&self, room_id: RoomId) {
        self.forget(room_id, true);
    }
}
