//! A session's rooms: the plain [`RoomTable`] kept in step with the hub by [`Presence`], which
//! is also the guard that leaves every room however the session's task ends.

mod cursor;
#[cfg(test)]
mod interleavings;
mod room;
mod standing;
mod table;

use std::sync::Arc;

use crate::domain::{NewEvent, RoomId, Sender, Seq};
use crate::hub::{Hub, MemberHandle, SessionId};
use crate::writer::Writer;

pub use cursor::Decision;
pub use table::{Done, Reader, Reading, RoomTable, Target};

/// The rooms this session is in or reads. A room is in the table exactly while the session
/// takes its events from the hub; `memberCount` counts stored memberships, which only ENTER and
/// LEAVE change. Dropped, however the task ends (a return, a panic, a cancellation), it leaves
/// every room it still holds and queues a LEAVE for each it is a member of.
pub struct Presence {
    id: SessionId,
    hub: Arc<Hub>,
    writer: Writer,
    member: MemberHandle,
    table: RoomTable,
    /// The session's identity is a bot's: the LEAVEs stored for it say so.
    pub bot: bool,
}

impl Presence {
    pub fn new(
        id: SessionId,
        hub: Arc<Hub>,
        writer: Writer,
        member: MemberHandle,
        reading: Reading,
    ) -> Self {
        Self {
            id,
            hub,
            writer,
            member,
            table: RoomTable::new(reading),
            bot: false,
        }
    }

    pub fn table(&self) -> &RoomTable {
        &self.table
    }

    pub fn table_mut(&mut self) -> &mut RoomTable {
        &mut self.table
    }

    /// Joins the room before its ENTER is stored, so the ENTER event reaches this session too.
    pub fn join(&mut self, room_id: RoomId, sender: Sender, resume_after: Option<Seq>, echo: bool) {
        self.hub.join(room_id, self.id, self.member.clone());
        self.table.enter(room_id, sender, resume_after, echo);
    }

    /// Takes the room's events from the hub before its newest seq is read from storage, so
    /// that nothing stored in between is missed; [`RoomTable::watch_from`] then anchors it.
    pub fn listen(&mut self, room_id: RoomId) {
        self.hub.join(room_id, self.id, self.member.clone());
        self.table.expect(room_id);
    }

    pub fn remove(&mut self, room_id: RoomId) {
        self.hub.leave(room_id, self.id);
        self.table.remove(room_id);
    }

    /// Takes the session out of a room now (a kick, a ban, a revoked role): it reads nothing
    /// more of it, and a LEAVE is queued if it is a member. Returns who on the connection
    /// read the room.
    pub fn evict(&mut self, room_id: RoomId) -> Vec<Reader> {
        self.hub.leave(room_id, self.id);
        let (readers, sender) = self.table.take(room_id);
        if let Some(sender) = sender {
            self.writer
                .append_detached(NewEvent::leave(room_id, sender, self.id).by_bot(self.bot));
        }
        readers
    }

    /// Leaves every room, queueing a LEAVE for each whose LEAVE is not stored yet, without waiting
    /// for anything.
    pub fn leave_all(&mut self) {
        for (room_id, sender) in self.table.drain() {
            self.hub.leave(room_id, self.id);
            if let Some(sender) = sender {
                self.writer
                    .append_detached(NewEvent::leave(room_id, sender, self.id).by_bot(self.bot));
            }
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.leave_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventKind, NewRoom, RoomName};
    use crate::hub::member_queue;
    use crate::metrics::Metrics;
    use crate::store::{EventRange, Store};
    use crate::writer::{Appended, BatchLimits, Options};

    struct World {
        _dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        writer: Writer,
        room_id: RoomId,
    }

    /// A real SQLite store, hub and writer, and a room.
    async fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::store::sqlite_in(dir.path(), 2).await;
        let metrics = Arc::new(Metrics::new());
        let hub = Arc::new(Hub::new(metrics.clone()));
        let limits = BatchLimits::for_session_queue(64, 1 << 20);
        let options = Options {
            queue: 64,
            batch: limits,
            purge_delay: std::time::Duration::ZERO,
            default_retention: None,
            retention_check: std::time::Duration::from_secs(10),
            commit_wait: std::time::Duration::ZERO,
        };
        let (writer, _) = Writer::start(storage.writer, hub.clone(), metrics, options);
        let room = writer
            .create_room(NewRoom::public(RoomName::parse("r").unwrap()))
            .await
            .unwrap();
        World {
            _dir: dir,
            store: storage.store,
            hub,
            writer,
            room_id: room.room_id,
        }
    }

    /// A session task that enters the room, then ends however `end` makes it.
    async fn enter_then(
        world: &World,
        end: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let (member, _queue) = member_queue(16, 1 << 20);
        let mut presence = Presence::new(
            1,
            world.hub.clone(),
            world.writer.clone(),
            member,
            Reading::Members,
        );
        let (writer, room_id) = (world.writer.clone(), world.room_id);
        let (inside, entered) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let alice = Sender::parse("alice").unwrap();
            presence.join(room_id, alice.clone(), None, true);
            let slot = writer.reserve().await.unwrap();
            let seq = slot.append(NewEvent::enter(room_id, alice, 1)).await;
            let Ok(Ok(Appended::Stored(stored))) = seq else {
                panic!("the ENTER is stored");
            };
            let seq = stored.seq;
            presence.table_mut().entered(room_id, seq);
            let _ = inside.send(());
            end.await;
            drop(presence);
        });
        let _ = entered.await;
        task
    }

    async fn kinds(world: &World) -> Vec<EventKind> {
        world.writer.ping().await.unwrap();
        let all = EventRange::Forward {
            after: Seq::ZERO,
            before: Seq::MAX,
            limit: 10,
        };
        let events = world.store.events(world.room_id, all).await.unwrap();
        events.iter().map(|event| event.kind).collect()
    }

    #[tokio::test]
    async fn a_session_task_that_panics_still_leaves_its_rooms() {
        let world = world().await;
        let task = enter_then(&world, async { panic!("a bug in the session") }).await;

        assert!(task.await.unwrap_err().is_panic());

        assert!(!world.hub.has_members(world.room_id));
        assert_eq!(kinds(&world).await, [EventKind::Enter, EventKind::Leave]);
    }

    #[tokio::test]
    async fn a_session_task_that_is_cancelled_still_leaves_its_rooms() {
        let world = world().await;
        let task = enter_then(&world, std::future::pending()).await;

        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());

        assert!(!world.hub.has_members(world.room_id));
        assert_eq!(kinds(&world).await, [EventKind::Enter, EventKind::Leave]);
    }
}
