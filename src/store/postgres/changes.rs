//! The SQL of messages that change, on the writer's connection: the lookups the checks need and
//! the changes accepted events make to their TALKs. Each is one statement over arrays
//! (`UNNEST`), whatever the batch holds: a round trip per step, not per row.

use async_trait::async_trait;
use sqlx::Row;

use super::writer::PgTx;
use super::{array, uuids};
use crate::domain::{Event, RoomId, Seq};
use crate::store::{Changes, ReactionKey, StoreError, Target, parse_seq, read_target};

#[async_trait]
impl Changes for PgTx<'_> {
    async fn find_targets(&mut self, keys: &[(RoomId, Seq)]) -> Result<Vec<Target>, StoreError> {
        let rows = sqlx::query(
            "SELECT events.room_id, events.seq, kind, sender, deleted \
             FROM UNNEST($1::uuid[], $2::bigint[]) AS named (room_id, seq) \
             JOIN events ON events.room_id = named.room_id AND events.seq = named.seq",
        )
        .bind(uuids(keys.iter().map(|(room_id, _)| room_id)))
        .bind(array(keys, |(_, seq)| seq.get()))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|row| read_target(row, RoomId::from_uuid(row.try_get("room_id")?)))
            .collect()
    }

    async fn reaction_counts(
        &mut self,
        talks: &[(RoomId, Seq)],
    ) -> Result<Vec<(RoomId, Seq, String, u32)>, StoreError> {
        let rows = sqlx::query(
            "SELECT reactions.room_id, target_seq, emoji, COUNT(*) AS count \
             FROM (SELECT DISTINCT * FROM UNNEST($1::uuid[], $2::bigint[])) AS talk (room_id, seq) \
             JOIN reactions ON reactions.room_id = talk.room_id AND target_seq = talk.seq \
             GROUP BY reactions.room_id, target_seq, emoji",
        )
        .bind(uuids(talks.iter().map(|(room_id, _)| room_id)))
        .bind(array(talks, |(_, seq)| seq.get()))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|row| {
                let count: i64 = row.try_get("count")?;
                Ok((
                    RoomId::from_uuid(row.try_get("room_id")?),
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
        let rows = sqlx::query(
            "SELECT DISTINCT reactions.* \
             FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::text[]) \
                  AS asked (room_id, target_seq, emoji, sender) \
             JOIN reactions ON reactions.room_id = asked.room_id \
              AND reactions.target_seq = asked.target_seq \
              AND reactions.emoji = asked.emoji AND reactions.sender = asked.sender",
        )
        .bind(uuids(keys.iter().map(|(room_id, ..)| room_id)))
        .bind(array(keys, |(_, seq, ..)| seq.get()))
        .bind(array(keys, |(.., emoji, _)| emoji.as_str()))
        .bind(array(keys, |(.., sender)| sender.as_str()))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|row| {
                let key = (
                    RoomId::from_uuid(row.try_get("room_id")?),
                    parse_seq(row.try_get("target_seq")?)?,
                    row.try_get("emoji")?,
                    row.try_get("sender")?,
                );
                Ok((key, parse_seq(row.try_get("seq")?)?))
            })
            .collect()
    }

    async fn edit_talks(&mut self, edits: &[&Event]) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE events SET message = edit.message, edited_at = edit.at \
             FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::bigint[]) \
                  AS edit (room_id, seq, message, at) \
             WHERE events.room_id = edit.room_id AND events.seq = edit.seq \
               AND events.kind = 'TALK'",
        )
        .bind(uuids(edits.iter().map(|edit| &edit.room_id)))
        .bind(array(edits, |edit| edit.target_seq.map_or(0, Seq::get)))
        .bind(array(edits, |edit| edit.message.as_str()))
        .bind(array(edits, |edit| edit.sent_at.millis()))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn erase_talks(&mut self, talks: &[(RoomId, Seq)]) -> Result<(), StoreError> {
        let rooms = uuids(talks.iter().map(|(room_id, _)| room_id));
        let seqs: Vec<i64> = talks.iter().map(|(_, seq)| seq.get()).collect();
        for erase in [
            "UPDATE events SET message = NULL, deleted = true \
             FROM UNNEST($1::uuid[], $2::bigint[]) AS talk (room_id, seq) \
             WHERE events.room_id = talk.room_id AND events.seq = talk.seq",
            "UPDATE events SET message = NULL, deleted = true \
             FROM UNNEST($1::uuid[], $2::bigint[]) AS talk (room_id, seq) \
             WHERE events.room_id = talk.room_id AND events.target_seq = talk.seq \
               AND events.kind = 'EDIT'",
            "DELETE FROM reactions USING UNNEST($1::uuid[], $2::bigint[]) AS talk (room_id, seq) \
             WHERE reactions.room_id = talk.room_id AND reactions.target_seq = talk.seq",
        ] {
            sqlx::query(erase)
                .bind(&rooms)
                .bind(&seqs)
                .execute(&mut *self.conn)
                .await?;
        }
        Ok(())
    }

    async fn add_reactions(&mut self, added: &[(ReactionKey, Seq)]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reactions (room_id, target_seq, emoji, sender, seq) \
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::bigint[])",
        )
        .bind(uuids(added.iter().map(|((room_id, ..), _)| room_id)))
        .bind(array(added, |((_, target, ..), _)| target.get()))
        .bind(array(added, |((.., emoji, _), _)| emoji.as_str()))
        .bind(array(added, |((.., sender), _)| sender.as_str()))
        .bind(array(added, |(_, seq)| seq.get()))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn remove_reactions(&mut self, removed: &[ReactionKey]) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM reactions \
             USING UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::text[]) \
                   AS gone (room_id, target_seq, emoji, sender) \
             WHERE reactions.room_id = gone.room_id AND reactions.target_seq = gone.target_seq \
               AND reactions.emoji = gone.emoji AND reactions.sender = gone.sender",
        )
        .bind(uuids(removed.iter().map(|(room_id, ..)| room_id)))
        .bind(array(removed, |(_, target, ..)| target.get()))
        .bind(array(removed, |(.., emoji, _)| emoji.as_str()))
        .bind(array(removed, |(.., sender)| sender.as_str()))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }
}
