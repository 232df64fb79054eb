//! The SQL of messages that change, on the writer's connection: the lookups the checks need and
//! the changes accepted events make to their TALKs. One statement per row: the batch holds
//! the file's one write lock, and a statement costs microseconds in-process.

use async_trait::async_trait;
use sqlx::Row;

use super::rows::parse_room_id;
use super::writer::SqliteTx;
use crate::domain::{Event, EventKind, RoomId, Seq};
use crate::store::{Changes, ReactionKey, StoreError, Target, parse_seq};

#[async_trait]
impl Changes for SqliteTx<'_> {
    async fn find_targets(&mut self, keys: &[(RoomId, Seq)]) -> Result<Vec<Target>, StoreError> {
        let mut found = Vec::new();
        for (room_id, seq) in keys {
            let row = sqlx::query(
                "SELECT kind, sender, deleted FROM events WHERE room_id = ? AND seq = ?",
            )
            .bind(room_id.to_string())
            .bind(seq.get())
            .fetch_optional(self.conn().await?)
            .await?;
            let Some(row) = row else { continue };
            let kind: &str = row.try_get("kind")?;
            found.push(Target {
                room_id: *room_id,
                seq: *seq,
                kind: EventKind::parse(kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("event kind {kind:?}")))?,
                sender: row.try_get("sender")?,
                deleted: row.try_get("deleted")?,
            });
        }
        Ok(found)
    }

    async fn reaction_counts(
        &mut self,
        talks: &[(RoomId, Seq)],
    ) -> Result<Vec<(RoomId, Seq, String, u32)>, StoreError> {
        let mut counts = Vec::new();
        for (room_id, seq) in talks {
            let rows = sqlx::query(
                "SELECT room_id, target_seq, emoji, COUNT(*) AS count FROM reactions \
                 WHERE room_id = ? AND target_seq = ? GROUP BY emoji",
            )
            .bind(room_id.to_string())
            .bind(seq.get())
            .fetch_all(self.conn().await?)
            .await?;
            for row in rows {
                let count: i64 = row.try_get("count")?;
                counts.push((
                    parse_room_id(row.try_get("room_id")?)?,
                    parse_seq(row.try_get("target_seq")?)?,
                    row.try_get("emoji")?,
                    u32::try_from(count).unwrap_or(u32::MAX),
                ));
            }
        }
        Ok(counts)
    }

    async fn reactions_present(
        &mut self,
        keys: &[ReactionKey],
    ) -> Result<Vec<(ReactionKey, Seq)>, StoreError> {
        let mut present = Vec::new();
        for key @ (room_id, target, emoji, sender) in keys {
            let seq: Option<i64> = sqlx::query_scalar(
                "SELECT seq FROM reactions \
                 WHERE room_id = ? AND target_seq = ? AND emoji = ? AND sender = ?",
            )
            .bind(room_id.to_string())
            .bind(target.get())
            .bind(emoji)
            .bind(sender)
            .fetch_optional(self.conn().await?)
            .await?;
            if let Some(seq) = seq {
                present.push((key.clone(), parse_seq(seq)?));
            }
        }
        Ok(present)
    }

    async fn edit_talks(&mut self, edits: &[&Event]) -> Result<(), StoreError> {
        for edit in edits {
            sqlx::query(
                "UPDATE events SET message = ?, edited_at = ? \
                 WHERE room_id = ? AND seq = ? AND kind = 'TALK'",
            )
            .bind(&edit.message)
            .bind(edit.sent_at.millis())
            .bind(edit.room_id.to_string())
            .bind(edit.target_seq.map_or(0, Seq::get))
            .execute(self.conn().await?)
            .await?;
        }
        Ok(())
    }

    async fn erase_talks(&mut self, talks: &[(RoomId, Seq)]) -> Result<(), StoreError> {
        for (room_id, seq) in talks {
            for erase in [
                "UPDATE events SET message = NULL, deleted = 1 WHERE room_id = ?1 AND seq = ?2",
                "UPDATE events SET message = NULL, deleted = 1 \
                 WHERE room_id = ?1 AND target_seq = ?2 AND kind = 'EDIT'",
                "DELETE FROM reactions WHERE room_id = ?1 AND target_seq = ?2",
            ] {
                sqlx::query(erase)
                    .bind(room_id.to_string())
                    .bind(seq.get())
                    .execute(self.conn().await?)
                    .await?;
            }
        }
        Ok(())
    }

    async fn add_reactions(&mut self, added: &[(ReactionKey, Seq)]) -> Result<(), StoreError> {
        for ((room_id, target, emoji, sender), seq) in added {
            sqlx::query(
                "INSERT INTO reactions (room_id, target_seq, emoji, sender, seq) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(room_id.to_string())
            .bind(target.get())
            .bind(emoji)
            .bind(sender)
            .bind(seq.get())
            .execute(self.conn().await?)
            .await?;
        }
        Ok(())
    }

    async fn remove_reactions(&mut self, removed: &[ReactionKey]) -> Result<(), StoreError> {
        for (room_id, target, emoji, sender) in removed {
            sqlx::query(
                "DELETE FROM reactions \
                 WHERE room_id = ? AND target_seq = ? AND emoji = ? AND sender = ?",
            )
            .bind(room_id.to_string())
            .bind(target.get())
            .bind(emoji)
            .bind(sender)
            .execute(self.conn().await?)
            .await?;
        }
        Ok(())
    }
}
