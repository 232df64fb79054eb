//! The SQL of every write, on the writer's own connection: rooms created and deleted, the
//! steps of a batch (their order is the batch logic's), and deleted rooms' events purged a
//! chunk at a time. `BEGIN IMMEDIATE` takes SQLite's one write lock when a transaction starts,
//! so locking a batch's rooms is only reading their newest seqs.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::rows::{event_from_row, in_list, parse_room_id};
use crate::domain::{Event, InstanceId, ReadMarker, RoomId, Seq, Timestamp};
use crate::store::{
    Entered, Membership, ResendKey, StoreError, WriteTx, moderation_column, parse_seq,
};

/// Rows per multi-row statement, well under SQLite's limit of 32,766 bound values.
const ROWS_PER_STATEMENT: usize = 1000;
/// SQLite's primary result code for a violated constraint (including a trigger's RAISE).
const SQLITE_CONSTRAINT: i32 = 19;

/// A transaction on the writer's connection, holding SQLite's write lock.
pub(super) struct SqliteTx<'c> {
    pub(super) conn: &'c mut SqliteConnection,
}

pub(super) fn membership_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Membership, StoreError> {
    let instance: &str = row.try_get("instance_id")?;
    Ok(Membership {
        room_id: parse_room_id(row.try_get("room_id")?)?,
        instance: Uuid::try_parse(instance)
            .map(InstanceId::from_uuid)
            .map_err(|_| StoreError::Corrupt(format!("instance id {instance:?}")))?,
        session: row.try_get("session_id")?,
    })
}

/// The cut-off for "silent for `silence`", in epoch milliseconds.
pub(super) fn silent_since(silence: Duration) -> i64 {
    let silence = i64::try_from(silence.as_millis()).unwrap_or(i64::MAX);
    Timestamp::now().millis().saturating_sub(silence)
}

#[async_trait]
impl WriteTx for SqliteTx<'_> {
    async fn control(&mut self, statement: &'static str) -> Result<(), StoreError> {
        sqlx::raw_sql(statement).execute(&mut *self.conn).await?;
        Ok(())
    }

    async fn lock_rooms(&mut self, rooms: &[RoomId]) -> Result<HashMap<RoomId, Seq>, StoreError> {
        let mut last = HashMap::with_capacity(rooms.len());
        for chunk in rooms.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT room_id, last_seq FROM rooms WHERE room_id IN ",
            );
            let ids = chunk.iter().map(RoomId::to_string);
            for row in in_list(&mut query, ids, "")
                .fetch_all(&mut *self.conn)
                .await?
            {
                let room_id = parse_room_id(row.try_get(0)?)?;
                last.insert(room_id, parse_seq(row.try_get(1)?)?);
            }
        }
        Ok(last)
    }

    async fn set_last_seqs(&mut self, rooms: &[(RoomId, Seq)]) -> Result<(), StoreError> {
        for chunk in rooms.chunks(ROWS_PER_STATEMENT) {
            let mut update =
                QueryBuilder::<Sqlite>::new("UPDATE rooms SET last_seq = taken.column2 FROM (");
            update.push_values(chunk, |mut row, (room_id, seq)| {
                row.push_bind(room_id.to_string()).push_bind(seq.get());
            });
            update.push(") AS taken WHERE rooms.room_id = taken.column1");
            update.build().execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    async fn insert_events(&mut self, events: &[&Event]) -> Result<(), StoreError> {
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, \
                 sent_at, target_seq, emoji, reply_to, moderation, bot) ",
            );
            insert.push_values(chunk, |mut row, event| {
                row.push_bind(event.room_id.to_string())
                    .push_bind(event.seq.get())
                    .push_bind(event.message_id.to_string())
                    .push_bind(event.kind.as_str())
                    .push_bind(event.sender.clone())
                    .push_bind(text(&event.message))
                    .push_bind(event.client_msg_id.clone())
                    .push_bind(event.sent_at.millis())
                    .push_bind(event.target_seq.map(Seq::get))
                    .push_bind(event.emoji.clone())
                    .push_bind(event.reply_to.map(Seq::get))
                    .push_bind(moderation_column(event))
                    .push_bind(event.bot);
            });
            insert.build().execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    async fn end_memberships(
        &mut self,
        members: &[Membership],
    ) -> Result<HashSet<Membership>, StoreError> {
        let mut present = HashSet::with_capacity(members.len());
        for member in members {
            let ended = sqlx::query(
                "DELETE FROM members WHERE instance_id = ? AND session_id = ? AND room_id = ?",
            )
            .bind(member.instance.to_string())
            .bind(member.session)
            .bind(member.room_id.to_string())
            .execute(&mut *self.conn)
            .await?;
            if ended.rows_affected() > 0 {
                present.insert(*member);
            }
        }
        Ok(present)
    }

    async fn add_memberships(&mut self, members: &[Entered<'_>]) -> Result<(), StoreError> {
        for chunk in members.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO members \
                 (instance_id, session_id, room_id, sender, entered_at, bot) ",
            );
            insert.push_values(chunk, |mut row, entered| {
                row.push_bind(entered.member.instance.to_string())
                    .push_bind(entered.member.session)
                    .push_bind(entered.member.room_id.to_string())
                    .push_bind(entered.sender.to_owned())
                    .push_bind(entered.at.millis())
                    .push_bind(entered.bot);
            });
            insert.build().execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    async fn find_resent(&mut self, keys: &[ResendKey<'_>]) -> Result<Vec<Event>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            // A join, not `(…) IN (VALUES …)`: SQLite scans the whole table for the latter, while
            // this looks each key up in the resend index (its WHERE is the index's own).
            let mut query = QueryBuilder::<Sqlite>::new("SELECT events.* FROM (");
            query.push_values(chunk, |mut row, (room_id, sender, id)| {
                row.push_bind(room_id.to_string())
                    .push_bind(sender.to_string())
                    .push_bind(id.to_string());
            });
            query.push(
                ") AS resent JOIN events ON events.room_id = resent.column1 \
                 AND events.sender = resent.column2 AND events.client_msg_id = resent.column3 \
                 WHERE events.kind NOT IN ('ENTER', 'LEAVE') AND events.client_msg_id IS NOT NULL",
            );
            for row in query.build().fetch_all(&mut *self.conn).await? {
                found.push(event_from_row(&row)?);
            }
        }
        Ok(found)
    }

    async fn raise_read_markers(
        &mut self,
        markers: &[ReadMarker],
    ) -> Result<Vec<Option<Seq>>, StoreError> {
        let mut risen = Vec::with_capacity(markers.len());
        for marker in markers {
            let seq: Option<i64> = sqlx::query_scalar(
                "INSERT INTO read_markers (room_id, sender, read_seq) \
                 SELECT room_id, ?2, MIN(?3, last_seq) FROM rooms \
                 WHERE room_id = ?1 AND MIN(?3, last_seq) > 0 \
                 ON CONFLICT (room_id, sender) DO UPDATE SET read_seq = excluded.read_seq \
                 WHERE read_markers.read_seq < excluded.read_seq \
                 RETURNING read_seq",
            )
            .bind(marker.room_id.to_string())
            .bind(marker.sender.as_str())
            .bind(marker.seq.get())
            .fetch_optional(&mut *self.conn)
            .await?;
            risen.push(seq.map(parse_seq).transpose()?);
        }
        Ok(risen)
    }

    async fn stored_ids(&mut self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut query =
                QueryBuilder::<Sqlite>::new("SELECT message_id FROM events WHERE message_id IN ");
            let listed = chunk.iter().map(Uuid::to_string);
            for row in in_list(&mut query, listed, "")
                .fetch_all(&mut *self.conn)
                .await?
            {
                let id: &str = row.try_get(0)?;
                found.extend(Uuid::try_parse(id).ok());
            }
        }
        Ok(found)
    }

    /// A violated constraint, including a trigger's RAISE.
    fn refuses_the_event(&self, error: &StoreError) -> bool {
        let StoreError::Database(sqlx::Error::Database(error)) = error else {
            return false;
        };
        let code = error.code().and_then(|code| code.parse::<i32>().ok());
        code.is_some_and(|code| code & 0xff == SQLITE_CONSTRAINT)
    }
}

/// An event's text as stored: none (NULL) for the kinds that carry none.
pub(super) fn text(message: &str) -> Option<String> {
    (!message.is_empty()).then(|| message.to_owned())
}
