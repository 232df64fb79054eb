//! The SQL of every write of one instance, on its writer's own connection. Several instances
//! write at once; the order of the steps (rooms locked in sorted order first) is the batch
//! logic's. Every statement has a fixed shape (arrays through `UNNEST`, never a `VALUES` list
//! as long as the batch), so the prepared-statement cache holds a handful of statements,
//! whatever the batch sizes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{array, event_from_row, room_seq_from_row, uuids};
use crate::domain::{Event, InstanceId, ReadMarker, RoomId, Seq};
use crate::store::{
    Delivered, Entered, Membership, ResendKey, StoreError, WriteTx, moderation_column, parse_seq,
};

/// A transaction on the writer's connection.
pub(super) struct PgTx<'c> {
    pub(super) conn: &'c mut PgConnection,
}

pub(super) fn membership_from_row(row: &sqlx::postgres::PgRow) -> Result<Membership, StoreError> {
    Ok(Membership {
        room_id: RoomId::from_uuid(row.try_get("room_id")?),
        instance: InstanceId::from_uuid(row.try_get("instance_id")?),
        session: row.try_get("session_id")?,
    })
}

pub(super) fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl PgTx<'_> {
    async fn find_resent(&mut self, keys: &[ResendKey<'_>]) -> Result<Vec<Event>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One index probe per key, whatever the statistics say: as a plain join, a table that
        // grew since it was last analyzed (any new deployment) gets a hash join over every
        // TALK stored, milliseconds per batch and growing.
        let rows = sqlx::query(
            "SELECT first.* \
             FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS resent (room_id, sender, client_msg_id) \
             CROSS JOIN LATERAL ( \
               SELECT * FROM events \
               WHERE events.room_id = resent.room_id AND events.sender = resent.sender \
                 AND events.client_msg_id = resent.client_msg_id \
                 AND events.kind NOT IN ('ENTER', 'LEAVE') AND events.client_msg_id IS NOT NULL \
               LIMIT 1) AS first",
        )
        .bind(uuids(keys.iter().map(|(room_id, ..)| room_id)))
        .bind(array(keys, |(_, sender, _)| *sender))
        .bind(array(keys, |(.., id)| *id))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}

#[async_trait]
impl WriteTx for PgTx<'_> {
    async fn control(&mut self, statement: &'static str) -> Result<(), StoreError> {
        sqlx::raw_sql(statement).execute(&mut *self.conn).await?;
        Ok(())
    }

    async fn lock_rooms(&mut self, rooms: &[RoomId]) -> Result<HashMap<RoomId, Seq>, StoreError> {
        let rows = sqlx::query(
            "SELECT room_id, last_seq FROM rooms WHERE room_id = ANY($1) \
             ORDER BY room_id FOR UPDATE",
        )
        .bind(uuids(rooms))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter().map(room_seq_from_row).collect()
    }

    async fn lock_rooms_finding_resent(
        &mut self,
        rooms: &[RoomId],
        keys: &[ResendKey<'_>],
    ) -> Result<(HashMap<RoomId, Seq>, Vec<Event>), StoreError> {
        let last = self.lock_rooms(rooms).await?;
        Ok((last, self.find_resent(keys).await?))
    }

    /// One statement: the rooms' newest seqs in a CTE beside the INSERT of the events (no
    /// key of events names rooms, so neither waits on the other's rows).
    async fn store_events(
        &mut self,
        last_seqs: &[(RoomId, Seq)],
        events: &[&Event],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "WITH seqs AS ( \
               UPDATE rooms SET last_seq = taken.last_seq \
               FROM UNNEST($14::uuid[], $15::bigint[]) AS taken (room_id, last_seq) \
               WHERE rooms.room_id = taken.room_id) \
             INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, \
                                 sent_at, target_seq, emoji, reply_to, moderation, bot) \
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], \
                                  $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::text[], \
                                  $11::bigint[], $12::text[], $13::boolean[])",
        )
        .bind(array(events, |e| e.room_id.uuid()))
        .bind(array(events, |e| e.seq.get()))
        .bind(array(events, |e| e.message_id))
        .bind(array(events, |e| e.kind.as_str()))
        .bind(array(events, |e| e.sender.as_str()))
        .bind(array(events, |e| text(&e.message)))
        .bind(array(events, |e| e.client_msg_id.as_deref()))
        .bind(array(events, |e| e.sent_at.millis()))
        .bind(array(events, |e| e.target_seq.map(Seq::get)))
        .bind(array(events, |e| e.emoji.as_deref()))
        .bind(array(events, |e| e.reply_to.map(Seq::get)))
        .bind(array(events, |e| moderation_column(e)))
        .bind(array(events, |e| e.bot))
        .bind(uuids(last_seqs.iter().map(|(room_id, _)| room_id)))
        .bind(array(last_seqs, |(_, seq)| seq.get()))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn end_memberships(
        &mut self,
        members: &[Membership],
    ) -> Result<HashSet<Membership>, StoreError> {
        if members.is_empty() {
            return Ok(HashSet::new());
        }
        let rows = sqlx::query(
            "DELETE FROM members \
             USING UNNEST($1::uuid[], $2::bigint[], $3::uuid[]) AS gone (instance_id, session_id, room_id) \
             WHERE members.instance_id = gone.instance_id AND members.session_id = gone.session_id \
               AND members.room_id = gone.room_id \
             RETURNING members.instance_id, members.session_id, members.room_id",
        )
        .bind(array(members, |m| m.instance.uuid()))
        .bind(array(members, |m| m.session))
        .bind(uuids(members.iter().map(|m| &m.room_id)))
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter().map(membership_from_row).collect()
    }

    async fn add_memberships(&mut self, members: &[Entered<'_>]) -> Result<(), StoreError> {
        if members.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO members (instance_id, session_id, room_id, sender, entered_at, bot) \
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::bigint[], \
                                  $6::boolean[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(array(members, |entered| entered.member.instance.uuid()))
        .bind(array(members, |e| e.member.session))
        .bind(uuids(members.iter().map(|e| &e.member.room_id)))
        .bind(array(members, |e| e.sender))
        .bind(array(members, |e| e.at.millis()))
        .bind(array(members, |e| e.bot))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn raise_read_markers(
        &mut self,
        markers: &[ReadMarker],
    ) -> Result<Vec<Option<Seq>>, StoreError> {
        // Sorted, so instances raising the same markers take their rows in the same order.
        let mut order: Vec<usize> = (0..markers.len()).collect();
        order.sort_by_key(|&i| (markers[i].room_id, markers[i].sender.as_str()));
        let mut risen = vec![None; markers.len()];
        for i in order {
            let marker = &markers[i];
            let seq: Option<i64> = sqlx::query_scalar(
                "INSERT INTO read_markers (room_id, sender, read_seq) \
                 SELECT room_id, $2, LEAST($3, last_seq) FROM rooms \
                 WHERE room_id = $1 AND LEAST($3, last_seq) > 0 \
                 ON CONFLICT (room_id, sender) DO UPDATE SET read_seq = EXCLUDED.read_seq \
                 WHERE read_markers.read_seq < EXCLUDED.read_seq \
                 RETURNING read_seq",
            )
            .bind(marker.room_id.uuid())
            .bind(marker.sender.as_str())
            .bind(marker.seq.get())
            .fetch_optional(&mut *self.conn)
            .await?;
            risen[i] = seq.map(parse_seq).transpose()?;
        }
        Ok(risen)
    }

    /// One statement for every position (arrays to `UNNEST`). Each webhook's row is locked
    /// (`FOR KEY SHARE`, as the foreign key's check would) before its position is written: a
    /// webhook deleted meanwhile is then seen gone and its position skipped, where the foreign
    /// key's check would fail the statement, and with it the batch (stored again event by
    /// event, in a transaction that no longer sees the webhook).
    async fn store_positions(&mut self, positions: &[Delivered]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_positions (webhook_id, room_id, delivered_seq) \
             SELECT w.webhook_id, p.room_id, p.seq \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[]) AS p (webhook_id, room_id, seq) \
             JOIN webhooks AS w ON w.webhook_id = p.webhook_id FOR KEY SHARE OF w \
             ON CONFLICT (webhook_id, room_id) DO UPDATE SET \
             delivered_seq = GREATEST(webhook_positions.delivered_seq, excluded.delivered_seq), \
             last_error = NULL, failing_since = NULL",
        )
        .bind(array(positions, |p| p.webhook_id.uuid()))
        .bind(array(positions, |p| p.room_id.uuid()))
        .bind(array(positions, |p| p.seq.get()))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn stored_ids(&mut self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
        let found: Vec<Uuid> =
            sqlx::query_scalar("SELECT message_id FROM events WHERE message_id = ANY($1)")
                .bind(ids)
                .fetch_all(&mut *self.conn)
                .await?;
        Ok(found.into_iter().collect())
    }

    /// An integrity constraint (class 23) or a trigger's exception (P0001).
    fn refuses_the_event(&self, error: &StoreError) -> bool {
        let StoreError::Database(sqlx::Error::Database(error)) = error else {
            return false;
        };
        error
            .code()
            .is_some_and(|code| code.starts_with("23") || code == "P0001")
    }
}

/// An event's text as stored: none (NULL) for the kinds that carry none.
fn text(message: &str) -> Option<&str> {
    (!message.is_empty()).then_some(message)
}
