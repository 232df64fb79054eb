//! Rooms as the writer changes them outside a batch: created with their owner's role, deleted
//! at once, and their events purged afterwards a bounded chunk at a time.

use std::time::Duration;

use super::{StoreWriter, within};
use crate::domain::{NewRoom, RoomId, Seq, Timestamp};
use crate::store::{NextPurge, Purge, RoomRecord, StoreError};

impl StoreWriter {
    /// Creates a room stamped `now` (or later: never before the newest room), with its owner's
    /// role, in one transaction.
    pub async fn create_room(
        &mut self,
        room: &NewRoom,
        now: Timestamp,
    ) -> Result<RoomRecord, StoreError> {
        let created = within(self.connection.create_room(room, now)).await;
        self.kept_if_ok(created)
    }

    /// Deletes a room and its memberships at once, returning its last seq (None when there was
    /// no such room); its events are removed afterwards by [`StoreWriter::purge_step`], a
    /// bounded chunk at a time.
    pub async fn delete_room(&mut self, room_id: RoomId) -> Result<Option<Seq>, StoreError> {
        let deleted = within(async {
            let mut tx = self.connection.begin().await?;
            let Some(last) = tx.delete_room_row(room_id).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            tx.forget_room(room_id).await?;
            if last > Seq::ZERO {
                tx.schedule_purge(room_id, last).await?;
            }
            tx.commit().await?;
            Ok(Some(last))
        })
        .await;
        self.kept_if_ok(deleted)
    }

    /// Deletes up to `limit` events of a room deleted at least `delay` ago.
    pub async fn purge_step(&mut self, limit: u32, delay: Duration) -> Result<Purge, StoreError> {
        let purged = within(async {
            let mut tx = self.connection.begin().await?;
            let (room_id, last, purged_through) = match tx.next_purge(delay).await? {
                NextPurge::Due {
                    room_id,
                    last,
                    purged_through,
                } => (room_id, last, purged_through),
                waiting_or_none => {
                    tx.rollback().await?;
                    return Ok(match waiting_or_none {
                        NextPurge::Waiting => Purge::Waiting,
                        _ => Purge::Done,
                    });
                }
            };
            let upto = purged_through.saturating_add(limit).min(last);
            tx.purge_through(room_id, upto, upto == last).await?;
            tx.commit().await?;
            Ok(Purge::Purged)
        })
        .await;
        self.kept_if_ok(purged)
    }
}
