//! The writer: every write of this instance passes through one task that holds the store's
//! write connection. It is a group-commit batcher, not the ordering authority: it stores
//! whatever appends have queued up since its last commit in one transaction (one fsync per
//! batch, never one per message), and the database gives each event its room's next `seq` in
//! that transaction, whichever instance stores it. It then hands the stored events to fan-out;
//! since it commits one batch at a time, fan-out sees the events this instance stored in `seq`
//! order per room (events other instances stored are put in order by the cluster's fan-out).
//! It answers each append before it publishes the event, so a session always learns what
//! became of its own ENTER or LEAVE before it sees that event. Between batches it deletes one
//! bounded chunk of a deleted room's events, so deleting a big room never stalls the others.
//! Heartbeats and the reaping of dead instances go through it too: a reaped member's LEAVE is
//! stored and published like any other event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;

use super::Fanout;
use crate::domain::{EventKind, InstanceId, NewEvent, RoomId, RoomName, Seq, Timestamp};
use crate::metrics::Metrics;
use crate::store::{Refused, RoomRecord, StoreError, StoreWriter};

/// Most appends taken into one transaction.
const MAX_BATCH: usize = 512;
/// Events deleted per step of a deleted room's purge: a few milliseconds of work.
const PURGE_CHUNK: u32 = 1000;
/// What an event's JSON adds to its text (names, ids, timestamp), for sizing batches.
const EVENT_OVERHEAD_BYTES: usize = 192;
/// How often LEAVEs that could not be stored, and that nobody waits for, are tried again.
const ORPHAN_RETRY: Duration = Duration::from_secs(1);

/// Why a command other than an append (creating or deleting a room, a ping, liveness) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("storage is unavailable, try again")]
    Unavailable,
}

/// Why an append was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("room {0} does not exist")]
    RoomNotFound(RoomId),
    /// A LEAVE of a session that is no member: its LEAVE is stored already (its instance was
    /// taken for dead), so the session has left.
    #[error("not a member of room {0}")]
    NotMember(RoomId),
    #[error("storage is unavailable, try again")]
    Unavailable,
}

/// The reply to one append: the stored event's `seq`.
pub type AppendReply = oneshot::Receiver<Result<Seq, AppendError>>;
type AppendSender = oneshot::Sender<Result<Seq, AppendError>>;

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

enum Command {
    Append {
        event: NewEvent,
        reply: AppendSender,
    },
    CreateRoom {
        name: RoomName,
        reply: oneshot::Sender<Result<RoomRecord, WriteError>>,
    },
    DeleteRoom {
        room_id: RoomId,
        reply: oneshot::Sender<Result<bool, WriteError>>,
    },
    Ping {
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    Register {
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    Heartbeat {
        reply: oneshot::Sender<Result<bool, WriteError>>,
    },
    DeadInstances {
        silence: Duration,
        reply: oneshot::Sender<Result<Vec<InstanceId>, WriteError>>,
    },
    Reap {
        instance: InstanceId,
        silence: Option<Duration>,
        reply: oneshot::Sender<Result<usize, WriteError>>,
    },
}

/// A cloneable handle to the writer task. The task ends once every handle is dropped and the
/// queue is drained, so dropping the last handle and awaiting the task flushes everything.
#[derive(Clone)]
pub struct Writer {
    commands: mpsc::Sender<Command>,
}

/// Room for one append in the writer's queue, held so the append itself never waits.
pub struct AppendSlot(mpsc::OwnedPermit<Command>);

impl AppendSlot {
    pub fn append(self, event: NewEvent) -> AppendReply {
        let (reply, receiver) = oneshot::channel();
        self.0.send(Command::Append { event, reply });
        receiver
    }
}

impl Writer {
    pub fn start(
        store: Box<dyn StoreWriter>,
        fanout: Arc<dyn Fanout>,
        metrics: Arc<Metrics>,
        capacity: usize,
        limits: BatchLimits,
    ) -> (Self, JoinHandle<()>) {
        let (commands, queue) = mpsc::channel(capacity);
        let task = GroupCommit {
            store,
            fanout,
            metrics,
            limits,
            purging: true,
            orphans: Vec::new(),
            orphans_tried: TokioInstant::now(),
        };
        (Self { commands }, tokio::spawn(task.run(queue)))
    }

    /// Room in the queue if there is some now; None while it is full.
    pub fn try_reserve(&self) -> Result<Option<AppendSlot>, WriteError> {
        match self.commands.clone().try_reserve_owned() {
            Ok(slot) => Ok(Some(AppendSlot(slot))),
            Err(TrySendError::Full(_)) => Ok(None),
            Err(TrySendError::Closed(_)) => Err(WriteError::Unavailable),
        }
    }

    /// Waits for room in the queue (backpressure) and holds it.
    pub async fn reserve(&self) -> Result<AppendSlot, WriteError> {
        let slot = self.commands.clone().reserve_owned().await;
        slot.map(AppendSlot).map_err(|_| WriteError::Unavailable)
    }

    /// Queues an append from where nothing may wait (a destructor): at once when there is room,
    /// else from a task of its own. Nobody hears the outcome.
    pub fn append_detached(&self, event: NewEvent) {
        let (reply, _) = oneshot::channel();
        let command = Command::Append { event, reply };
        match self.commands.try_send(command) {
            Ok(()) => {}
            Err(TrySendError::Closed(_)) => {
                tracing::warn!("the writer is gone; an append was lost")
            }
            Err(TrySendError::Full(command)) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let commands = self.commands.clone();
                    runtime.spawn(async move { commands.send(command).await });
                }
                Err(_) => tracing::warn!("no runtime to queue an append from; it was lost"),
            },
        }
    }

    pub async fn create_room(&self, name: RoomName) -> Result<RoomRecord, WriteError> {
        self.ask(|reply| Command::CreateRoom { name, reply })
            .await?
    }

    /// Deletes a room after every append queued before it; members then get `CLOSED`.
    pub async fn delete_room(&self, room_id: RoomId) -> Result<bool, WriteError> {
        self.ask(|reply| Command::DeleteRoom { room_id, reply })
            .await?
    }

    /// A round trip through the queue and the write connection: the writer is alive, not stuck,
    /// and can reach storage.
    pub async fn ping(&self) -> Result<(), WriteError> {
        self.ask(|reply| Command::Ping { reply }).await?
    }

    /// Records this instance as alive.
    pub async fn register(&self) -> Result<(), WriteError> {
        self.ask(|reply| Command::Register { reply }).await?
    }

    /// Renews this instance's heartbeat; false when the others took it for dead.
    pub async fn heartbeat(&self) -> Result<bool, WriteError> {
        self.ask(|reply| Command::Heartbeat { reply }).await?
    }

    /// Other instances silent for longer than `silence`.
    pub async fn dead_instances(&self, silence: Duration) -> Result<Vec<InstanceId>, WriteError> {
        self.ask(|reply| Command::DeadInstances { silence, reply })
            .await?
    }

    /// Stores a LEAVE for each member of an instance that is gone (still silent for `silence`,
    /// if given) and forgets it; the LEAVEs are published like any event. Returns how many.
    pub async fn reap(
        &self,
        instance: InstanceId,
        silence: Option<Duration>,
    ) -> Result<usize, WriteError> {
        self.ask(|reply| Command::Reap {
            instance,
            silence,
            reply,
        })
        .await?
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, WriteError> {
        let (reply, receiver) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| WriteError::Unavailable)?;
        receiver.await.map_err(|_| WriteError::Unavailable)
    }
}

/// Appends taken together into one transaction, with where each reply goes.
#[derive(Default)]
struct Batch {
    events: Vec<NewEvent>,
    replies: Vec<(RoomId, AppendSender)>,
    bytes: usize,
}

impl Batch {
    fn fits(&self, event: &NewEvent, limits: &BatchLimits) -> bool {
        self.events.is_empty() || self.bytes + size(event) <= limits.bytes
    }

    /// The LEAVEs in the batch whose session is gone (nobody waits for the reply): they must
    /// be stored however long storage takes to come back.
    fn orphaned_leaves(&self) -> Vec<NewEvent> {
        self.events
            .iter()
            .zip(&self.replies)
            .filter(|(event, (_, reply))| event.kind == EventKind::Leave && reply.is_closed())
            .map(|(event, _)| event.clone())
            .collect()
    }

    fn push(&mut self, event: NewEvent, reply: AppendSender) {
        self.bytes += size(&event);
        self.replies.push((event.room_id, reply));
        self.events.push(event);
    }
}

fn size(event: &NewEvent) -> usize {
    event.text_bytes() + EVENT_OVERHEAD_BYTES
}

struct GroupCommit {
    store: Box<dyn StoreWriter>,
    fanout: Arc<dyn Fanout>,
    metrics: Arc<Metrics>,
    limits: BatchLimits,
    /// Whether a deleted room may still have events to delete (checked at start too, for a
    /// purge a restart interrupted).
    purging: bool,
    /// LEAVEs of sessions that have ended which storage could not take: tried again every
    /// [`ORPHAN_RETRY`], so a member who hung up while storage was down still leaves, once.
    /// (Only LEAVEs: a TALK whose sender is gone was refused to it, and it may send it again.)
    orphans: Vec<NewEvent>,
    orphans_tried: TokioInstant,
}

impl GroupCommit {
    async fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        let mut commands = Vec::with_capacity(self.limits.events);
        while receive(&mut queue, &mut commands, self.limits.events, self.idle()).await {
            let mut batch = self.orphans_due();
            for command in commands.drain(..) {
                batch = self.execute(command, batch).await;
            }
            self.commit(batch).await;
            if self.purging {
                self.purge_step().await;
            }
        }
        tracing::debug!("writer drained and stopped");
    }

    /// Adds an append to the batch, or commits the batch and then runs the command, so every
    /// command takes effect after those queued before it.
    async fn execute(&mut self, command: Command, mut batch: Batch) -> Batch {
        match command {
            Command::Append { event, reply } => {
                if !batch.fits(&event, &self.limits) {
                    self.commit(std::mem::take(&mut batch)).await;
                }
                batch.push(event, reply);
                return batch;
            }
            Command::CreateRoom { name, reply } => {
                self.commit(batch).await;
                let created = self.store.create_room(&name, Timestamp::now()).await;
                let _ = reply.send(created.map_err(unavailable("creating a room")));
            }
            Command::DeleteRoom { room_id, reply } => {
                self.commit(batch).await;
                let _ = reply.send(self.delete(room_id).await);
            }
            Command::Ping { reply } => {
                self.commit(batch).await;
                let _ = reply.send(self.store.ping().await.map_err(unavailable("a ping")));
            }
            Command::Register { reply } => {
                self.commit(batch).await;
                let registered = self.store.register().await;
                let _ = reply.send(registered.map_err(unavailable("registering")));
            }
            Command::Heartbeat { reply } => {
                self.commit(batch).await;
                let renewed = self.store.heartbeat().await;
                let _ = reply.send(renewed.map_err(unavailable("a heartbeat")));
            }
            Command::DeadInstances { silence, reply } => {
                self.commit(batch).await;
                let dead = self.store.dead_instances(silence).await;
                let _ = reply.send(dead.map_err(unavailable("looking for dead instances")));
            }
            Command::Reap {
                instance,
                silence,
                reply,
            } => {
                self.commit(batch).await;
                let _ = reply.send(self.reap(instance, silence).await);
            }
        }
        Batch::default()
    }

    /// How long to wait for commands: not at all while a purge goes on, until the next retry
    /// while LEAVEs wait to be stored, else for as long as it takes.
    fn idle(&self) -> Option<Duration> {
        if self.purging {
            return Some(Duration::ZERO);
        }
        (!self.orphans.is_empty()).then_some(ORPHAN_RETRY)
    }

    /// A batch holding the orphaned LEAVEs, when it is time to try them again.
    fn orphans_due(&mut self) -> Batch {
        let mut batch = Batch::default();
        if self.orphans.is_empty() || self.orphans_tried.elapsed() < ORPHAN_RETRY {
            return batch;
        }
        self.orphans_tried = TokioInstant::now();
        for leave in self.orphans.drain(..) {
            let (reply, _) = oneshot::channel();
            batch.push(leave, reply);
        }
        batch
    }

    async fn commit(&mut self, batch: Batch) {
        if batch.events.is_empty() {
            return;
        }
        let orphans = batch.orphaned_leaves();
        let started = Instant::now();
        let stored = self.store.append(batch.events).await;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.batch_size.observe(batch.replies.len() as f64);
        let results = match stored {
            Ok(results) => results,
            Err(error) => {
                tracing::error!(%error, batch = batch.replies.len(), "storing a batch failed");
                for (_, reply) in batch.replies {
                    let _ = reply.send(Err(AppendError::Unavailable));
                }
                self.keep_for_later(orphans);
                return;
            }
        };
        for (result, (room_id, reply)) in results.into_iter().zip(batch.replies) {
            let refusal = match result {
                Ok(event) => {
                    self.metrics.event_stored(event.kind.as_str());
                    let _ = reply.send(Ok(event.seq));
                    self.fanout.publish(&event);
                    continue;
                }
                Err(Refused::RoomGone) => AppendError::RoomNotFound(room_id),
                Err(Refused::NotMember) => AppendError::NotMember(room_id),
                Err(Refused::Rejected) => AppendError::Unavailable,
            };
            let _ = reply.send(Err(refusal));
        }
    }

    fn keep_for_later(&mut self, orphans: Vec<NewEvent>) {
        if !orphans.is_empty() {
            tracing::warn!(
                leaves = orphans.len(),
                "LEAVEs of ended sessions wait for storage"
            );
            self.orphans_tried = TokioInstant::now();
            self.orphans.extend(orphans);
        }
    }

    async fn delete(&mut self, room_id: RoomId) -> Result<bool, WriteError> {
        let deleted = self
            .store
            .delete_room(room_id)
            .await
            .map_err(unavailable("deleting a room"))?;
        let Some(last_seq) = deleted else {
            return Ok(false);
        };
        self.fanout.close_room(room_id, last_seq);
        self.purging = true;
        Ok(true)
    }

    async fn reap(
        &mut self,
        instance: InstanceId,
        silence: Option<Duration>,
    ) -> Result<usize, WriteError> {
        let leaves = self
            .store
            .reap(instance, silence)
            .await
            .map_err(unavailable("reaping an instance"))?;
        if !leaves.is_empty() {
            tracing::info!(%instance, members = leaves.len(), "stored a LEAVE for each member of a dead instance");
        }
        for event in &leaves {
            self.metrics.event_stored(event.kind.as_str());
            self.fanout.publish(event);
        }
        Ok(leaves.len())
    }

    async fn purge_step(&mut self) {
        match self.store.purge_step(PURGE_CHUNK).await {
            Ok(more) => self.purging = more,
            Err(error) => {
                tracing::warn!(%error, "purging a deleted room's events failed; resuming at the next deletion or restart");
                self.purging = false;
            }
        }
    }
}

/// Takes up to `max` queued commands, waiting for one at most `wait` (None: for as long as it
/// takes; work is due afterwards in any case). False once the queue is closed and empty.
async fn receive(
    queue: &mut mpsc::Receiver<Command>,
    into: &mut Vec<Command>,
    max: usize,
    wait: Option<Duration>,
) -> bool {
    let Some(wait) = wait else {
        return queue.recv_many(into, max).await > 0;
    };
    tokio::select! {
        biased;
        received = queue.recv_many(into, max) => received > 0,
        () = tokio::time::sleep(wait) => true,
    }
}

/// Logs a storage failure, which the caller only ever sees as `Unavailable`.
fn unavailable(what: &'static str) -> impl Fn(StoreError) -> WriteError {
    move |error| {
        tracing::error!(%error, "{what} failed");
        WriteError::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;

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

    #[tokio::test]
    async fn a_writer_whose_task_died_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("chat.db").display());
        let storage = crate::store::connect(&url, 1, InstanceId::random())
            .await
            .unwrap();
        let metrics = Arc::new(Metrics::new());
        let hub = Arc::new(Hub::new(metrics.clone()));
        let limits = BatchLimits::for_session_queue(8, 4096);
        let (writer, task) = Writer::start(storage.writer, hub, metrics, 8, limits);
        assert_eq!(writer.ping().await, Ok(()));

        task.abort();
        let _ = task.await;

        assert_eq!(writer.ping().await, Err(WriteError::Unavailable));
        assert!(writer.reserve().await.is_err());
        assert!(writer.try_reserve().is_err());
    }
}
