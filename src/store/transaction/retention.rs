//! Retention: erasing the events a room keeps no longer, oldest first and never its newest,
//! a bounded chunk per transaction under the room's lock (so a busy room's batches wait for
//! one chunk at most), and setting a room's limits.

use super::{StoreWriter, within};
use crate::domain::{Retention, RoomId, Seq, Timestamp};
use crate::store::{Erasable, RoomRecord, StoreError};

impl StoreWriter {
    /// Erases up to `limit` events of one room past its retention (`default_age`, in seconds,
    /// for rooms with none of their own); false when no room has any.
    pub async fn erase_step(
        &mut self,
        default_age: Option<u64>,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let erased = within(async {
            let mut tx = self.connection.begin().await?;
            let Some(room) = tx.next_erasure(default_age, Timestamp::now()).await? else {
                tx.rollback().await?;
                return Ok(false);
            };
            tx.lock_rooms(&[room.room_id]).await?;
            let times = match room.retention.max_age_seconds {
                Some(_) => {
                    tx.sent_times(room.room_id, room.erased_through, limit)
                        .await?
                }
                None => Vec::new(),
            };
            let through = erasable_through(&room, &times, limit, Timestamp::now());
            if let Some(through) = through {
                tx.erase_through(room.room_id, through).await?;
            }
            tx.commit().await?;
            Ok(through.is_some())
        })
        .await;
        self.kept_if_ok(erased)
    }

    /// Sets a room's own retention; None when there is no such room.
    pub async fn set_retention(
        &mut self,
        room_id: RoomId,
        retention: Retention,
    ) -> Result<Option<RoomRecord>, StoreError> {
        let set = within(self.connection.set_retention(room_id, retention)).await;
        self.kept_if_ok(set)
    }
}

/// The seq through which a room's events may go now: past its `maxEvents`, or (in seq order,
/// from the oldest kept) stored longer ago than its `maxAgeSeconds`; at most `limit` of them,
/// and never its newest. None when nothing may go.
fn erasable_through(
    room: &Erasable,
    times: &[(Seq, Timestamp)],
    limit: u32,
    now: Timestamp,
) -> Option<Seq> {
    let by_count = room
        .retention
        .max_events
        .and_then(|keep| i64::try_from(keep).ok())
        .and_then(|keep| Seq::new(room.last_seq.get().saturating_sub(keep)));
    let by_age = room.retention.max_age_seconds.and_then(|age| {
        let age_ms = i64::try_from(age.saturating_mul(1000)).unwrap_or(i64::MAX);
        let cutoff = now.millis().saturating_sub(age_ms);
        times
            .iter()
            .take_while(|(_, sent_at)| sent_at.millis() < cutoff)
            .map(|(seq, _)| *seq)
            .last()
    });
    let through = by_count.max(by_age)?;
    let bound = room
        .erased_through
        .saturating_add(limit)
        .min(room.last_seq.prev());
    let through = through.min(bound);
    (through > room.erased_through).then_some(through)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(raw: i64) -> Seq {
        Seq::new(raw).unwrap()
    }

    fn room(last: i64, erased: i64, retention: Retention) -> Erasable {
        Erasable {
            room_id: RoomId::random(),
            last_seq: seq(last),
            erased_through: seq(erased),
            retention,
        }
    }

    fn keep_events(count: u64) -> Retention {
        Retention {
            max_age_seconds: None,
            max_events: Some(count),
        }
    }

    #[test]
    fn past_max_events_the_oldest_go_a_chunk_at_a_time() {
        let now = Timestamp::from_millis(0);
        assert_eq!(
            erasable_through(&room(100, 0, keep_events(10)), &[], 1000, now),
            Some(seq(90))
        );
        assert_eq!(
            erasable_through(&room(100, 0, keep_events(10)), &[], 25, now),
            Some(seq(25))
        );
        assert_eq!(
            erasable_through(&room(100, 90, keep_events(10)), &[], 1000, now),
            None
        );
        assert_eq!(
            erasable_through(&room(5, 0, keep_events(10)), &[], 1000, now),
            None
        );
    }

    #[test]
    fn the_newest_event_always_stays() {
        let now = Timestamp::from_millis(0);
        assert_eq!(
            erasable_through(&room(7, 0, keep_events(1)), &[], 1000, now),
            Some(seq(6))
        );
        let old = Retention {
            max_age_seconds: Some(1),
            max_events: None,
        };
        let times: Vec<(Seq, Timestamp)> = (1..=7)
            .map(|n| (seq(n), Timestamp::from_millis(n)))
            .collect();
        let later = Timestamp::from_millis(1_000_000);
        assert_eq!(
            erasable_through(&room(7, 0, old), &times, 1000, later),
            Some(seq(6))
        );
    }

    #[test]
    fn past_max_age_events_go_in_seq_order_up_to_the_first_young_one() {
        let day = Retention {
            max_age_seconds: Some(86_400),
            max_events: None,
        };
        let now = Timestamp::from_millis(10 * 86_400_000);
        let old = Timestamp::from_millis(86_400_000);
        let young = Timestamp::from_millis(10 * 86_400_000 - 1000);
        let times = [(seq(4), old), (seq(5), old), (seq(6), young), (seq(7), old)];
        assert_eq!(
            erasable_through(&room(9, 3, day), &times, 1000, now),
            Some(seq(5))
        );
        assert_eq!(
            erasable_through(&room(9, 5, day), &times[2..], 1000, now),
            None
        );
    }
}
