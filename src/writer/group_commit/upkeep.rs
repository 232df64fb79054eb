//! What the writer does beside appends: deleting a room, reaping a dead instance's members,
//! purging deleted rooms' events and erasing those past their room's retention, a bounded chunk
//! at a time between batches.

use std::time::Duration;

use tokio::time::Instant as TokioInstant;

use super::{GroupCommit, unavailable};
use crate::domain::{InstanceId, Retention, RoomId};
use crate::store::{Purge, RoomRecord};
use crate::writer::WriteError;

/// Events deleted per step of a deleted room's purge: a few milliseconds of work.
const PURGE_CHUNK: u32 = 1000;
/// Events erased per step of retention: a few milliseconds of work, one room's lock held.
const ERASE_CHUNK: u32 = 1000;
/// How often deleted rooms still within their delay are looked at again, at most.
const PURGE_RECHECK: Duration = Duration::from_secs(30);
/// When to take the next step of purging deleted rooms' events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purging {
    /// Between the next batches (a room may have events to delete).
    Now,
    /// Deleted rooms wait for their delay: look again then.
    NotBefore(TokioInstant),
    /// Nothing to purge until the next deletion.
    Idle,
}

impl GroupCommit {
    pub(super) async fn delete(&mut self, room_id: RoomId) -> Result<bool, WriteError> {
        let deleted = self
            .store
            .delete_room(room_id)
            .await
            .map_err(unavailable("deleting a room"))?;
        let Some(last_seq) = deleted else {
            return Ok(false);
        };
        self.fanout.close_room(room_id, last_seq);
        self.purging = Purging::Now;
        Ok(true)
    }

    /// Stores a LEAVE for each member of a dead instance, a batch's worth per transaction,
    /// each fanned out before the next is stored: thousands of members of one room leaving at
    /// once never fill the queues of those still in it (a batch is half a session queue).
    pub(super) async fn reap(
        &mut self,
        instance: InstanceId,
        silence: Option<Duration>,
    ) -> Result<usize, WriteError> {
        let mut reaped = 0;
        loop {
            let (leaves, more) = self
                .store
                .reap(instance, silence, self.options.batch.events)
                .await
                .map_err(unavailable("reaping an instance"))?;
            reaped += leaves.len();
            for event in &leaves {
                self.metrics
                    .event_stored(event.kind.as_str(), event.action());
            }
            self.fanout.publish(&leaves);
            if !more {
                break;
            }
            tokio::task::yield_now().await;
        }
        if reaped > 0 {
            tracing::info!(%instance, members = reaped, "stored a LEAVE for each member of a dead instance");
        }
        Ok(reaped)
    }

    pub(super) async fn purge_step(&mut self) {
        let delay = self.options.purge_delay;
        self.purging = match self.store.purge_step(PURGE_CHUNK, delay).await {
            Ok(Purge::Purged) => Purging::Now,
            Ok(Purge::Waiting) => {
                Purging::NotBefore(TokioInstant::now() + delay.min(PURGE_RECHECK))
            }
            Ok(Purge::Done) => Purging::Idle,
            Err(error) => {
                tracing::warn!(%error, "purging a deleted room's events failed; resuming at the next deletion or restart");
                Purging::Idle
            }
        };
    }

    pub(super) async fn set_retention(
        &mut self,
        room_id: RoomId,
        retention: Retention,
    ) -> Result<Option<RoomRecord>, WriteError> {
        let set = self.store.set_retention(room_id, retention).await;
        self.erase_at = TokioInstant::now();
        set.map_err(unavailable("setting a room's retention"))
    }

    pub(super) fn erase_due(&self) -> bool {
        self.erase_at <= TokioInstant::now()
    }

    /// Erases one chunk of events past a room's retention; looks again at once while there
    /// was some, else after the check interval.
    pub(super) async fn erase_step(&mut self) {
        let default = self.options.default_retention;
        let erased = self.store.erase_step(default, ERASE_CHUNK).await;
        let again = match erased {
            Ok(true) => {
                self.metrics.retention_erasures.inc();
                Duration::ZERO
            }
            Ok(false) => self.options.retention_check,
            Err(error) => {
                tracing::warn!(%error, "erasing events past their retention failed; trying again later");
                self.options.retention_check
            }
        };
        self.erase_at = TokioInstant::now() + again;
    }
}
