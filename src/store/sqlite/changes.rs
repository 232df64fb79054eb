//! The SQL of messages that change, on the writer's connection: the lookups the checks need and
//! the changes accepted events make to their TALKs. Each step is one call to SQLite's thread
//! whatever the batch holds (a call is a round trip that wakes two threads, far dearer than a
//! statement), each of its keys looked up by index. TALKs go as JSON to `json_each`; what
//! clients wrote is bound.

use async_trait::async_trait;
use sqlx::{Executor, QueryBuilder, Row, Sqlite};

use super::ROWS_PER_STATEMENT;
use super::batch::json_room_seqs;
use super::rows::parse_room_id;
use super::writer::SqliteTx;
use crate::domain::{Event, RoomId, Seq};
use crate::store::{Changes, ReactionKey, StoreError, Target, parse_seq, read_target};

#[async_trait]
impl Changes for SqliteTx<'_> {
    async fn find_targets(&mut self, keys: &[(RoomId, Seq)]) -> Result<Vec<Target>, StoreError> {
        let rows = sqlx::query(
            "SELECT events.room_id, events.seq, kind, sender, deleted FROM \
             (SELECT DISTINCT value ->> 0 AS room_id, value ->> 1 AS seq FROM json_each(?)) AS k \
             JOIN events ON events.room_id = k.room_id AND events.seq = k.seq",
        )
        .bind(json_room_seqs(keys))
        .fetch_all(self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| read_target(row, parse_room_id(row.try_get("room_id")?)?))
            .collect()
    }

    /// Each TALK once, however many of the batch's REACTs name it.
    async fn reaction_counts(
        &mut self,
        talks: &[(RoomId, Seq)],
    ) -> Result<Vec<(RoomId, Seq, String, u32)>, StoreError> {
        let rows = sqlx::query(
            "SELECT reactions.room_id, target_seq, emoji, COUNT(*) AS count FROM \
             (SELECT DISTINCT value ->> 0 AS room_id, value ->> 1 AS seq FROM json_each(?)) AS talk \
             JOIN reactions ON reactions.room_id = talk.room_id AND target_seq = talk.seq \
             GROUP BY reactions.room_id, target_seq, emoji",
        )
        .bind(json_room_seqs(talks))
        .fetch_all(self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                let count: i64 = row.try_get("count")?;
                Ok((
                    parse_room_id(row.try_get("room_id")?)?,
                    parse_seq(row.try_get("target_seq")?)?,
                    row.try_get("emoji")?,
                    u32::try_from(count).unwrap_or(u32::MAX),
                ))
            })
            .collect()
    }

    async fn reactions_present(
        &mut self,
        keys: &[ReactionKey],
    ) -> Result<Vec<(ReactionKey, Seq)>, StoreError> {
        let mut present = Vec::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT reactions.room_id, reactions.target_seq, reactions.emoji, \
                 reactions.sender, reactions.seq FROM (",
            );
            query.push_values(chunk, |mut row, (room_id, target, emoji, sender)| {
                row.push_bind(room_id.to_string())
                    .push_bind(target.get())
                    .push_bind(emoji.clone())
                    .push_bind(sender.clone());
            });
            query.push(
                ") AS k JOIN reactions ON reactions.room_id = k.column1 \
                 AND reactions.target_seq = k.column2 AND reactions.emoji = k.column3 \
                 AND reactions.sender = k.column4",
            );
            for row in query.build().fetch_all(self.conn().await?).await? {
                let key = (
                    parse_room_id(row.try_get("room_id")?)?,
                    parse_seq(row.try_get("target_seq")?)?,
                    row.try_get("emoji")?,
                    row.try_get("sender")?,
                );
                present.push((key, parse_seq(row.try_get("seq")?)?));
            }
        }
        Ok(present)
    }

    async fn edit_talks(&mut self, edits: &[&Event]) -> Result<(), StoreError> {
        for chunk in edits.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "UPDATE events SET message = edit.column3, edited_at = edit.column4 FROM (",
            );
            query.push_values(chunk, |mut row, edit| {
                row.push_bind(edit.room_id.to_string())
                    .push_bind(edit.target_seq.map_or(0, Seq::get))
                    .push_bind(edit.message.clone())
                    .push_bind(edit.sent_at.millis());
            });
            query.push(
                ") AS edit WHERE events.room_id = edit.column1 AND events.seq = edit.column2 \
                 AND events.kind = 'TALK'",
            );
            self.conn().await?.execute(query.build()).await?;
        }
        Ok(())
    }

    async fn erase_talks(&mut self, talks: &[(RoomId, Seq)]) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE events SET message = NULL, deleted = 1 \
             WHERE (room_id, seq) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?1)); \
             UPDATE events SET message = NULL, deleted = 1 FROM \
             (SELECT value ->> 0 AS room_id, value ->> 1 AS seq FROM json_each(?1)) AS talk \
             WHERE events.kind = 'EDIT' AND events.room_id = talk.room_id \
             AND events.target_seq = talk.seq; \
             DELETE FROM reactions \
             WHERE (room_id, target_seq) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?1))",
        )
        .bind(json_room_seqs(talks))
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    async fn add_reactions(&mut self, added: &[(ReactionKey, Seq)]) -> Result<(), StoreError> {
        for chunk in added.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO reactions (room_id, target_seq, emoji, sender, seq) ",
            );
            query.push_values(chunk, |mut row, ((room_id, target, emoji, sender), seq)| {
                row.push_bind(room_id.to_string())
                    .push_bind(target.get())
                    .push_bind(emoji.clone())
                    .push_bind(sender.clone())
                    .push_bind(seq.get());
            });
            self.conn().await?.execute(query.build()).await?;
        }
        Ok(())
    }

    async fn remove_reactions(&mut self, removed: &[ReactionKey]) -> Result<(), StoreError> {
        for chunk in removed.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "DELETE FROM reactions WHERE (room_id, target_seq, emoji, sender) IN (",
            );
            query.push_values(chunk, |mut row, (room_id, target, emoji, sender)| {
                row.push_bind(room_id.to_string())
                    .push_bind(target.get())
                    .push_bind(emoji.clone())
                    .push_bind(sender.clone());
            });
            query.push(")");
            self.conn().await?.execute(query.build()).await?;
        }
        Ok(())
    }
}
