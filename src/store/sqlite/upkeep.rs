//! Reaping a dead instance, deleting a room and purging its events, on the writer's
//! connection.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;

use super::rows::parse_room_id;
use super::writer::{SqliteTx, membership_from_row, silent_since};
use crate::domain::{InstanceId, RoomId, Seq, Timestamp};
use crate::store::{
    Erasable, Membership, NextPurge, StoreError, Upkeep, parse_seq, read_retention,
};

#[async_trait]
impl Upkeep for SqliteTx<'_> {
    async fn delete_room_row(&mut self, room_id: RoomId) -> Result<Option<Seq>, StoreError> {
        let last: Option<i64> =
            sqlx::query_scalar("DELETE FROM rooms WHERE room_id = ? RETURNING last_seq")
                .bind(room_id.to_string())
                .fetch_optional(self.conn().await?)
                .await?;
        last.map(parse_seq).transpose()
    }
    async fn forget_room(&mut self, room_id: RoomId) -> Result<(), StoreError> {
        for forget in [
            "DELETE FROM members WHERE room_id = ?",
            "DELETE FROM read_markers WHERE room_id = ?",
            "DELETE FROM reactions WHERE room_id = ?",
            "DELETE FROM room_roles WHERE room_id = ?",
            "DELETE FROM room_bans WHERE room_id = ?",
            "DELETE FROM room_mutes WHERE room_id = ?",
        ] {
            sqlx::query(forget)
                .bind(room_id.to_string())
                .execute(self.conn().await?)
                .await?;
        }
        Ok(())
    }
    async fn schedule_purge(&mut self, room_id: RoomId, last: Seq) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO room_purges (room_id, last_seq, deleted_at) VALUES (?, ?, ?)")
            .bind(room_id.to_string())
            .bind(last.get())
            .bind(Timestamp::now().millis())
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }
    async fn next_purge(&mut self, delay: Duration) -> Result<NextPurge, StoreError> {
        let next = sqlx::query(
            "SELECT room_id, last_seq, purged_through, deleted_at <= ? AS due \
             FROM room_purges ORDER BY deleted_at LIMIT 1",
        )
        .bind(silent_since(delay))
        .fetch_optional(self.conn().await?)
        .await?;
        let Some(next) = next else {
            return Ok(NextPurge::None);
        };
        if !next.try_get::<bool, _>("due")? {
            return Ok(NextPurge::Waiting);
        }
        Ok(NextPurge::Due {
            room_id: parse_room_id(next.try_get("room_id")?)?,
            last: parse_seq(next.try_get("last_seq")?)?,
            purged_through: parse_seq(next.try_get("purged_through")?)?,
        })
    }
    async fn purge_through(
        &mut self,
        room_id: RoomId,
        upto: Seq,
        done: bool,
    ) -> Result<(), StoreError> {
        let room_id = room_id.to_string();
        sqlx::query("DELETE FROM events WHERE room_id = ? AND seq <= ?")
            .bind(&room_id)
            .bind(upto.get())
            .execute(self.conn().await?)
            .await?;
        let progress = match done {
            true => sqlx::query("DELETE FROM room_purges WHERE room_id = ?").bind(&room_id),
            false => sqlx::query("UPDATE room_purges SET purged_through = ? WHERE room_id = ?")
                .bind(upto.get())
                .bind(&room_id),
        };
        progress.execute(self.conn().await?).await?;
        Ok(())
    }
    async fn forget_instance(
        &mut self,
        instance: InstanceId,
        silence: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let cutoff = silence.map_or(i64::MAX, silent_since);
        let id = instance.to_string();
        let forgotten =
            sqlx::query("DELETE FROM instances WHERE instance_id = ? AND heartbeat_at < ?")
                .bind(&id)
                .bind(cutoff)
                .execute(self.conn().await?)
                .await?;
        let alive: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM instances WHERE instance_id = ?)")
                .bind(&id)
                .fetch_one(self.conn().await?)
                .await?;
        Ok(forgotten.rows_affected() > 0 || !alive || silence.is_none())
    }
    async fn members_of(
        &mut self,
        instance: InstanceId,
        limit: usize,
    ) -> Result<Vec<(Membership, String, bool)>, StoreError> {
        let rows = sqlx::query(
            "SELECT instance_id, session_id, room_id, sender, bot FROM members WHERE instance_id = ? \
             ORDER BY session_id, room_id LIMIT ?",
        )
        .bind(instance.to_string())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.conn().await?)
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
        let row = sqlx::query(
            "SELECT room_id, last_seq, erased_through, retention_max_events, \
                    CASE WHEN retention_max_events IS NULL \
                         THEN COALESCE(retention_max_age, ?1) ELSE retention_max_age END AS max_age FROM rooms \
             WHERE last_seq - erased_through > 1 AND ( \
               (retention_max_events IS NOT NULL \
                AND last_seq - erased_through > retention_max_events) \
               OR EXISTS (SELECT 1 FROM events \
                 WHERE events.room_id = rooms.room_id AND events.seq = rooms.erased_through + 1 \
                   AND events.sent_at < ?2 - (CASE WHEN rooms.retention_max_events IS NULL \
                     THEN COALESCE(rooms.retention_max_age, ?1) ELSE rooms.retention_max_age END) * 1000)) \
             LIMIT 1",
        )
        .bind(default_age.map(age))
        .bind(now.millis())
        .fetch_optional(self.conn().await?)
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
            "SELECT seq, sent_at FROM events WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(room_id.to_string())
        .bind(after.get())
        .bind(limit)
        .fetch_all(self.conn().await?)
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
            "DELETE FROM events WHERE room_id = ?1 AND seq <= ?2",
            "DELETE FROM reactions WHERE room_id = ?1 AND target_seq <= ?2",
            "UPDATE rooms SET erased_through = ?2 WHERE room_id = ?1",
        ] {
            sqlx::query(erase)
                .bind(room_id.to_string())
                .bind(through.get())
                .execute(self.conn().await?)
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
fn erasable(row: &sqlx::sqlite::SqliteRow) -> Result<Erasable, StoreError> {
    Ok(Erasable {
        room_id: parse_room_id(row.try_get("room_id")?)?,
        last_seq: parse_seq(row.try_get("last_seq")?)?,
        erased_through: parse_seq(row.try_get("erased_through")?)?,
        retention: read_retention(row, "max_age")?,
    })
}
