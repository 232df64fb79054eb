//! The single writer: every event append and room deletion passes through one task, which
//! stores whatever has queued up since its last commit in one transaction (group commit: one
//! fsync per batch, never one per message), then hands the stored events to fan-out in `seq`
//! order. Storing before fan-out is what keeps history and what members saw in agreement;
//! one writer is what keeps every room's events in order for every member.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::Fanout;
use crate::domain::{NewEvent, RoomId};
use crate::metrics::Metrics;
use crate::store::{RoomGone, Store};

/// Most commands taken into one transaction.
const MAX_BATCH: usize = 512;

/// The batch bound for a session queue of this size. One batch may hold that many events of
/// one room, all queued for each member at once: kept to half a queue, a member that keeps up
/// is never mistaken for a slow one.
pub fn batch_limit(session_queue: usize) -> usize {
    (session_queue / 2).clamp(1, MAX_BATCH)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("room {0} does not exist")]
    RoomNotFound(RoomId),
    #[error("storage is unavailable, try again")]
    Unavailable,
}

/// The reply to one append: the stored event's `seq`.
pub type AppendReply = oneshot::Receiver<Result<i64, AppendError>>;

enum Command {
    Append {
        event: NewEvent,
        reply: oneshot::Sender<Result<i64, AppendError>>,
    },
    Delete {
        room_id: RoomId,
        reply: oneshot::Sender<Result<bool, AppendError>>,
    },
}

/// A cloneable handle to the writer task. The task ends once every handle is dropped and the
/// queue is drained, so dropping the last handle and awaiting the task flushes everything.
#[derive(Clone)]
pub struct Sequencer {
    commands: mpsc::Sender<Command>,
}

impl Sequencer {
    pub fn start(
        store: Arc<dyn Store>,
        fanout: Arc<dyn Fanout>,
        metrics: Arc<Metrics>,
        capacity: usize,
        max_batch: usize,
    ) -> (Self, JoinHandle<()>) {
        let (commands, queue) = mpsc::channel(capacity);
        let writer = Writer {
            store,
            fanout,
            metrics,
            max_batch,
        };
        (Self { commands }, tokio::spawn(writer.run(queue)))
    }

    /// Queues an append now (so a session's appends keep their order) and returns the reply
    /// to await later.
    pub async fn submit(&self, event: NewEvent) -> Result<AppendReply, AppendError> {
        let (reply, receiver) = oneshot::channel();
        self.commands
            .send(Command::Append { event, reply })
            .await
            .map_err(|_| AppendError::Unavailable)?;
        Ok(receiver)
    }

    /// Deletes a room after every append queued before it; members then get `CLOSED`.
    pub async fn delete_room(&self, room_id: RoomId) -> Result<bool, AppendError> {
        let (reply, receiver) = oneshot::channel();
        self.commands
            .send(Command::Delete { room_id, reply })
            .await
            .map_err(|_| AppendError::Unavailable)?;
        receiver.await.unwrap_or(Err(AppendError::Unavailable))
    }
}

type PendingAppend = (NewEvent, oneshot::Sender<Result<i64, AppendError>>);

struct Writer {
    store: Arc<dyn Store>,
    fanout: Arc<dyn Fanout>,
    metrics: Arc<Metrics>,
    max_batch: usize,
}

impl Writer {
    async fn run(self, mut queue: mpsc::Receiver<Command>) {
        let mut commands = Vec::with_capacity(self.max_batch);
        let mut appends = Vec::with_capacity(self.max_batch);
        while queue.recv_many(&mut commands, self.max_batch).await > 0 {
            for command in commands.drain(..) {
                match command {
                    Command::Append { event, reply } => appends.push((event, reply)),
                    Command::Delete { room_id, reply } => {
                        self.store_batch(&mut appends).await;
                        let _ = reply.send(self.delete(room_id).await);
                    }
                }
            }
            self.store_batch(&mut appends).await;
        }
        tracing::debug!("sequencer drained and stopped");
    }

    async fn delete(&self, room_id: RoomId) -> Result<bool, AppendError> {
        match self.store.delete_room(room_id).await {
            Ok(deleted) => {
                if deleted {
                    self.fanout.close_room(room_id);
                }
                Ok(deleted)
            }
            Err(error) => {
                tracing::error!(%error, %room_id, "deleting a room failed");
                Err(AppendError::Unavailable)
            }
        }
    }

    async fn store_batch(&self, appends: &mut Vec<PendingAppend>) {
        if appends.is_empty() {
            return;
        }
        let (events, replies): (Vec<_>, Vec<_>) = appends.drain(..).unzip();
        let started = Instant::now();
        let stored = self.store.append(events).await;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.batch_size.observe(replies.len() as f64);
        match stored {
            Ok(results) => self.publish(results, replies),
            Err(error) => {
                tracing::error!(%error, batch = replies.len(), "storing a batch failed");
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Unavailable));
                }
            }
        }
    }

    fn publish(
        &self,
        results: Vec<Result<crate::domain::Event, RoomGone>>,
        replies: Vec<oneshot::Sender<Result<i64, AppendError>>>,
    ) {
        for (result, reply) in results.into_iter().zip(replies) {
            let outcome = match result {
                Ok(event) => {
                    self.metrics.event_stored(event.kind.as_str());
                    self.fanout.publish(&event);
                    Ok(event.seq)
                }
                Err(RoomGone(room_id)) => Err(AppendError::RoomNotFound(room_id)),
            };
            let _ = reply.send(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::batch_limit;

    #[test]
    fn a_batch_never_exceeds_half_a_session_queue() {
        assert_eq!(batch_limit(1024), 512);
        assert_eq!(batch_limit(64), 32);
        assert_eq!(batch_limit(1), 1);
        assert_eq!(batch_limit(100_000), 512);
    }
}
