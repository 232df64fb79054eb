//! Reaping a dead instance, deleting a room and purging its events, on the writer's
//! connection. Several instances purge at once: each takes a deleted room nobody else holds.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;

use super::writer::{PgTx, membership_from_row, seconds};
use crate::domain::{InstanceId, RoomId, Seq, Timestamp};
use crate::store::{
    Erasable, Membership, NextPurge, StoreError, Upkeep, parse_seq, read_retention,
};

/// The advisory lock retention is erased under: one instance at a time.
const RETENTION_LOCK: i64 = 0x6368_6174_7265_7465;

#[async_trait]
impl Upkeep for PgTx<'_> {
    async fn delete_room_row(&mut self, room_id: RoomId) -> Result<Option<Seq>, StoreError> {
        let last: Option<i64> =
            sqlx::query_scalar("DELETE FROM rooms WHERE room_id = $1 RETURNING last_seq")
                .bind(room_id.uuid())
                .fetch_optional(&mut *self.conn)
                .await?;
        last.map(parse_seq).transpose()
    }
    async fn forget_room(&mut self, room_id: RoomId) -> Result<(), StoreError> {
        for forget in [
            "DELETE FROM members WHERE room_id = $1",
            "DELETE FROM read_markers WHERE room_id = $1",
            "DELETE FROM reactions WHERE room_id = $1",
            "DELETE FROM room_roles WHERE room_id = $1",
            "DELETE FROM room_bans WHERE room_id = $1",
            "DELETE FROM room_mutes WHERE room_id = $1",
        ] {
            sqlx::query(forget)
                .bind(room_id.uuid())
                .execute(&mut *self.conn)
                .await?;
        }
        Ok(())
    }
    async fn schedule_purge(&mut self, room_id: RoomId, last: Seq) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO room_purges (room_id, last_seq, deleted_at) \
             VALUES ($1, $2, clock_timestamp())",
        )
        .bind(room_id.uuid())
        .bind(last.get())
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }
    async fn next_purge(&mut self, delay: Duration) -> Result<NextPurge, StoreError> {
        // Another instance may be purging too: each takes a deleted room nobody else holds.
        let due = sqlx::query(
            "SELECT room_id, last_seq, purged_through FROM room_purges \
             WHERE deleted_at <= clock_timestamp() - make_interval(secs => $1) \
             LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(seconds(delay))
        .fetch_optional(&mut *self.conn)
        .await?;
        if let Some(due) = due {
            return Ok(NextPurge::Due {
                room_id: RoomId::from_uuid(due.try_get("room_id")?),
                last: parse_seq(due.try_get("last_seq")?)?,
                purged_through: parse_seq(due.try_get("purged_through")?)?,
            });
        }
        let waiting: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM room_purges)")
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(if waiting {
            NextPurge::Waiting
        } else {
            NextPurge::None
        })
    }
    async fn purge_through(
        &mut self,
        room_id: RoomId,
        upto: Seq,
        done: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM events WHERE room_id = $1 AND seq <= $2")
            .bind(room_id.uuid())
            .bind(upto.get())
            .execute(&mut *self.conn)
            .await?;
        let progress = match done {
            true => sqlx::query("DELETE FROM room_purges WHERE room_id = $1").bind(room_id.uuid()),
            false => sqlx::query("UPDATE room_purges SET purged_through = $2 WHERE room_id = $1")
                .bind(room_id.uuid())
                .bind(upto.get()),
        };
        progress.execute(&mut *self.conn).await?;
        Ok(())
    }
    async fn forget_instance(
        &mut self,
        instance: InstanceId,
        silence: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let forgotten: bool = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM instances WHERE instance_id = $1 \
             AND ($2::float8 IS NULL OR heartbeat_at < clock_timestamp() - make_interval(secs => $2)) \
             RETURNING 1) \
             SELECT EXISTS (SELECT 1 FROM gone) \
             OR NOT EXISTS (SELECT 1 FROM instances WHERE instance_id = $1)",
        )
        .bind(instance.uuid())
        .bind(silence.map(seconds))
        .fetch_one(&mut *self.conn)
        .await?;
        Ok(forgotten || silence.is_none())
    }
    async fn members_of(
        &mut self,
        instance: InstanceId,
        limit: usize,
    ) -> Result<Vec<(Membership, String, bool)>, StoreError> {
        let rows = sqlx::query(
            "SELECT instance_id, session_id, room_id, sender, bot FROM members WHERE instance_id = $1 \
             ORDER BY session_id, room_id LIMIT $2",
        )
        .bind(instance.uuid())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|row| {
                let sender = row.try_get("sender")?;
                Ok((membership_from_row(row)?, sender, row.try_get("bot")?))
            })
            .collect()
    }

    async fn next_erasure(
        &mut self,
        default_age: Option<u64>,
        now: Timestamp,
    ) -> Result<Option<Erasable>, StoreError> {
        // One instance erases at a time; the others find nothing to do meanwhile.
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RETENTION_LOCK)
            .fetch_one(&mut *self.conn)
            .await?;
        if !mine {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT room_id, last_seq, erased_through, retention_max_events, \
                    CASE WHEN retention_max_events IS NULL \
                         THEN COALESCE(retention_max_age, $1) ELSE retention_max_age END AS max_age FROM rooms \
             WHERE last_seq - erased_through > 1 AND ( \
               (retention_max_events IS NOT NULL \
                AND last_seq - erased_through > retention_max_events) \
               OR EXISTS (SELECT 1 FROM events \
                 WHERE events.room_id = rooms.room_id AND events.seq = rooms.erased_through + 1 \
                   AND events.sent_at < $2 - (CASE WHEN rooms.retention_max_events IS NULL \
                     THEN COALESCE(rooms.retention_max_age, $1) ELSE rooms.retention_max_age END) * 1000)) \
             LIMIT 1",
        )
        .bind(default_age.map(age))
        .bind(now.millis())
        .fetch_optional(&mut *self.conn)
        .await?;
        row.as_ref().map(erasable).transpose()
    }

    async fn sent_times(
        &mut self,
        room_id: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<(Seq, Timestamp)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, sent_at FROM events WHERE room_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(room_id.uuid())
        .bind(after.get())
        .bind(i64::from(limit))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|row| {
                let sent_at = Timestamp::from_millis(row.try_get("sent_at")?);
                Ok((parse_seq(row.try_get("seq")?)?, sent_at))
            })
            .collect()
    }

    async fn erase_through(&mut self, room_id: RoomId, through: Seq) -> Result<(), StoreError> {
        for erase in [
            "DELETE FROM events WHERE room_id = $1 AND seq <= $2",
            "DELETE FROM reactions WHERE room_id = $1 AND target_seq <= $2",
            "UPDATE rooms SET erased_through = $2 WHERE room_id = $1",
        ] {
            sqlx::query(erase)
                .bind(room_id.uuid())
                .bind(through.get())
                .execute(&mut *self.conn)
                .await?;
        }
        Ok(())
    }
}

/// A retention age as SQL computes with it.
fn age(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

/// A room [`Upkeep::next_erasure`] found, with its limits as they apply.
fn erasable(row: &sqlx::postgres::PgRow) -> Result<Erasable, StoreError> {
    Ok(Erasable {
        room_id: RoomId::from_uuid(row.try_get("room_id")?),
        last_seq: parse_seq(row.try_get("last_seq")?)?,
        erased_through: parse_seq(row.try_get("erased_through")?)?,
        retention: read_retention(row, "max_age")?,
    })
}
