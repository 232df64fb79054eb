//! The writer: every write of this instance passes through one task that holds the store's
//! write connection. It is a group-commit batcher, not the ordering authority: it stores
//! whatever appends have queued up since its last commit in one transaction (one fsync per
//! batch, never one per message), and the database gives each event its room's next `seq` in
//! that transaction, whichever instance stores it. It then hands the stored events to fan-out
//! ([`Fanout`]); since it commits one batch at a time, fan-out sees the events this instance
//! stored in `seq` order per room (events other instances stored are put in order by the
//! cluster's fan-out).
//!
//! It answers each append before it publishes the event, so a session always learns what
//! became of its own ENTER or LEAVE before it sees that event. A LEAVE that could not be
//! stored and whose session is gone (nobody took the refusal) is tried again until it is
//! stored. Between batches it deletes one bounded chunk of a deleted room's events, so
//! deleting a big room never stalls the others. The reaping of dead instances goes through it
//! too: a reaped member's LEAVE is stored and published like any other event.

mod batch;
mod command;
mod group_commit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use uuid::Uuid;

use crate::domain::{
    Event, InstanceId, NewEvent, NewRoom, ReadMarker, Retention, RoomId, Seq, Standing, Timestamp,
};
use crate::hub::Fanout;
use crate::metrics::Metrics;
use crate::store::{Delivered, Positions, RoomRecord, StoreError, StoreWriter};

pub use batch::BatchLimits;
use command::Command;
use group_commit::GroupCommit;

/// How the writer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Commands its queue holds; while it is full, sessions wait for room.
    pub queue: usize,
    pub batch: BatchLimits,
    /// How long a deleted room's events stay before they are purged, so members still reading
    /// them (a resume) get every one.
    pub purge_delay: Duration,
    /// Seconds a room keeps its events when its own retention says nothing (None: all).
    pub default_retention: Option<u64>,
    /// How often to look for events past their room's retention.
    pub retention_check: Duration,
    /// How long a batch waits, after its first append came, for more to join it (zero: it
    /// takes what is queued and commits at once).
    pub commit_wait: Duration,
}

/// Why a command other than an append (creating or deleting a room, a ping, reaping) failed.
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
    /// A change or reply naming no TALK of the room that is not deleted.
    #[error("no message at seq {0}")]
    TargetNotFound(Seq),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NoChange(&'static str),
    #[error("too many different reactions")]
    TooManyReactions,
    #[error("you are banned from room {0}")]
    Banned(RoomId),
    #[error("the room must keep at least one owner")]
    LastOwner,
    #[error("storage is unavailable, try again")]
    Unavailable,
}

/// What storing an append gave its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub seq: Seq,
    pub message_id: Uuid,
    pub sent_at: Timestamp,
    /// A signed-in sender's ENTER: its standing in the room as of this seq.
    pub standing: Option<Standing>,
}

/// What became of an append that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    Stored(Stored),
    /// A TALK whose `clientMsgId` its sender already used in the room: nothing was stored,
    /// and this is the first one.
    Duplicate(Box<Event>),
}

/// The reply to one append.
pub type AppendReply = oneshot::Receiver<Result<Appended, AppendError>>;
type AppendSender = oneshot::Sender<Result<Appended, AppendError>>;
/// The reply to a read marker: stored (raised, or already as high).
pub type ReadReply = oneshot::Receiver<Result<(), AppendError>>;
type ReadSender = oneshot::Sender<Result<(), AppendError>>;

/// A cloneable handle to the writer task. The task ends once every handle is dropped and the
/// queue is drained, so dropping the last handle and awaiting the task flushes everything.
#[derive(Clone)]
pub struct Writer {
    commands: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
}

/// Room for one append in the writer's queue, held so the append itself never waits.
pub struct AppendSlot {
    permit: mpsc::OwnedPermit<Command>,
    metrics: Arc<Metrics>,
}

impl AppendSlot {
    pub fn append(self, event: NewEvent) -> AppendReply {
        let (reply, receiver) = oneshot::channel();
        self.metrics.writer_queued("append");
        self.permit.send(Command::Append {
            event,
            reply,
            queued: Instant::now(),
        });
        receiver
    }

    pub fn read(self, marker: ReadMarker) -> ReadReply {
        let (reply, receiver) = oneshot::channel();
        self.metrics.writer_queued("read");
        self.permit.send(Command::Read { marker, reply });
        receiver
    }
}

impl Writer {
    pub fn start(
        store: StoreWriter,
        fanout: Arc<dyn Fanout>,
        metrics: Arc<Metrics>,
        options: Options,
    ) -> (Self, JoinHandle<()>) {
        let (commands, queue) = mpsc::channel(options.queue);
        let task = GroupCommit::new(store, fanout, metrics.clone(), options);
        (Self { commands, metrics }, tokio::spawn(task.run(queue)))
    }

    /// Room in the queue if there is some now; None while it is full.
    pub fn try_reserve(&self) -> Result<Option<AppendSlot>, WriteError> {
        match self.commands.clone().try_reserve_owned() {
            Ok(permit) => Ok(Some(self.slot(permit))),
            Err(TrySendError::Full(_)) => Ok(None),
            Err(TrySendError::Closed(_)) => Err(WriteError::Unavailable),
        }
    }

    /// Waits for room in the queue (backpressure) and holds it.
    pub async fn reserve(&self) -> Result<AppendSlot, WriteError> {
        let permit = self.commands.clone().reserve_owned().await;
        permit
            .map(|permit| self.slot(permit))
            .map_err(|_| WriteError::Unavailable)
    }

    fn slot(&self, permit: mpsc::OwnedPermit<Command>) -> AppendSlot {
        AppendSlot {
            permit,
            metrics: self.metrics.clone(),
        }
    }

    /// Queues an append from where nothing may wait (a destructor): at once when there is room,
    /// else from a task of its own. Nobody hears the outcome.
    pub fn append_detached(&self, event: NewEvent) {
        let (reply, _) = oneshot::channel();
        let command = Command::Append {
            event,
            reply,
            queued: Instant::now(),
        };
        self.metrics.writer_queued("append");
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

    pub async fn create_room(&self, room: NewRoom) -> Result<RoomRecord, WriteError> {
        self.ask(|reply| Command::CreateRoom { room, reply })
            .await?
    }

    /// Deletes a room after every append queued before it; members then get `CLOSED`.
    pub async fn delete_room(&self, room_id: RoomId) -> Result<bool, WriteError> {
        self.ask(|reply| Command::DeleteRoom { room_id, reply })
            .await?
    }

    /// Sets a room's own retention; None when there is no such room. Events past it are
    /// erased within the next retention check.
    pub async fn set_retention(
        &self,
        room_id: RoomId,
        retention: Retention,
    ) -> Result<Option<RoomRecord>, WriteError> {
        self.ask(|reply| Command::SetRetention {
            room_id,
            retention,
            reply,
        })
        .await?
    }

    /// A round trip through the queue and the write connection: the writer is alive, not stuck,
    /// and can reach storage.
    pub async fn ping(&self) -> Result<(), WriteError> {
        self.ask(|reply| Command::Ping { reply }).await?
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
        let command = command(reply);
        self.metrics.writer_queued(command.name());
        self.commands
            .send(command)
            .await
            .map_err(|_| WriteError::Unavailable)?;
        receiver.await.map_err(|_| WriteError::Unavailable)
    }
}

/// A webhook's delivery positions go with the writer's batches.
#[async_trait]
impl Positions for Writer {
    async fn delivered(&self, position: Delivered) -> Result<(), StoreError> {
        let stored = self
            .ask(|reply| Command::Delivered { position, reply })
            .await;
        match stored {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(StoreError::NotWritten),
        }
    }
}
