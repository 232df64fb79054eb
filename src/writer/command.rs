//! What the writer task is asked to do, through its queue.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{AppendSender, ReadSender, WriteError};
use crate::domain::{InstanceId, NewEvent, NewRoom, ReadMarker, Retention, RoomId};
use crate::store::{Delivered, RoomRecord};

/// One request to the writer task, with where its answer goes.
pub(super) enum Command {
    Append {
        event: NewEvent,
        reply: AppendSender,
        /// When it entered the queue, for the `committed` stage.
        queued: Instant,
    },
    /// Raise a read marker (stored with the next batch), and tell the room when it rose.
    Read {
        marker: ReadMarker,
        reply: ReadSender,
    },
    /// Store a webhook's delivery position (with the next batch).
    Delivered {
        position: Delivered,
        reply: ReadSender,
    },
    CreateRoom {
        room: NewRoom,
        reply: oneshot::Sender<Result<RoomRecord, WriteError>>,
    },
    DeleteRoom {
        room_id: RoomId,
        reply: oneshot::Sender<Result<bool, WriteError>>,
    },
    SetRetention {
        room_id: RoomId,
        retention: Retention,
        reply: oneshot::Sender<Result<Option<RoomRecord>, WriteError>>,
    },
    Ping {
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    Reap {
        instance: InstanceId,
        silence: Option<Duration>,
        reply: oneshot::Sender<Result<usize, WriteError>>,
    },
}

impl Command {
    /// Whether it is stored with a batch (an append, a read marker or a webhook position).
    pub(super) fn is_batched(&self) -> bool {
        matches!(
            self,
            Self::Append { .. } | Self::Read { .. } | Self::Delivered { .. }
        )
    }

    /// Its name in metrics.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Append { .. } => "append",
            Self::Read { .. } => "read",
            Self::Delivered { .. } => "delivered",
            Self::CreateRoom { .. } => "create_room",
            Self::DeleteRoom { .. } => "delete_room",
            Self::SetRetention { .. } => "set_retention",
            Self::Ping { .. } => "ping",
            Self::Reap { .. } => "reap",
        }
    }
}
