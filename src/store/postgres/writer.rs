//! The SQL of every write of one instance, on its writer's own connection. Several instances
//! write at once; the order of the steps (rooms locked in sorted order first) is the batch
//! logic's. Every statement has a fixed shape (arrays through `UNNEST`, never a `VALUES` list
//! as long as the batch), so the prepared-statement cache holds a handful of statements,
//! whatever the batch sizes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use super::{CONNECT_TIMEOUT, event_from_row, room_from_row, room_seq_from_row, uuids};
use crate::domain::{Event, InstanceId, ReadMarker, Retention, RoomId, RoomName, Seq, Timestamp};
use crate::store::{
    Entered, Membership, ResendKey, RoomRecord, StoreError, WriteConnection, WriteTx, parse_seq,
};

/// The advisory lock rooms are created under, so each is stamped no earlier than the one
/// before it, whichever instance creates them.
const ROOM_CREATION_LOCK: i64 = 0x6368_6174_726f_6f6d;

pub struct PgWriteConnection {
    options: PgConnectOptions,
    connection: Option<PgConnection>,
}

impl PgWriteConnection {
    pub(super) fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            connection: None,
        }
    }

    async fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
        if self.connection.is_none() {
            let connecting = PgConnection::connect_with(&self.options);
            let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(|_| StoreError::TimedOut(CONNECT_TIMEOUT))??;
            self.connection = Some(connection);
        }
        self.connection
            .as_mut()
            .ok_or(StoreError::TimedOut(CONNECT_TIMEOUT))
    }

    async fn transaction(&mut self) -> Result<PgTx<'_>, StoreError> {
        let conn = self.connection().await?;
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
        Ok(PgTx { conn })
    }
}

#[async_trait]
impl WriteConnection for PgWriteConnection {
    async fn begin(&mut self) -> Result<Box<dyn WriteTx + '_>, StoreError> {
        Ok(Box::new(self.transaction().await?))
    }

    fn discard(&mut self) {
        self.connection = None;
    }

    async fn create_room(
        &mut self,
        name: &RoomName,
        now: Timestamp,
    ) -> Result<RoomRecord, StoreError> {
        let tx = self.transaction().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ROOM_CREATION_LOCK)
            .execute(&mut *tx.conn)
            .await?;
        let row = sqlx::query(
            concat!("INSERT INTO rooms (room_id, name, created_at) VALUES ($1, $2, \
             GREATEST($3, COALESCE((SELECT created_at FROM rooms ORDER BY position DESC LIMIT 1), $3))) \
             RETURNING ", room_columns!()),
        )
        .bind(RoomId::random().uuid())
        .bind(name.as_str())
        .bind(now.millis())
        .fetch_one(&mut *tx.conn)
        .await?;
        Box::new(tx).commit().await?;
        room_from_row(&row)
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        self.connection().await?.ping().await?;
        Ok(())
    }

    async fn set_retention(
        &mut self,
        room_id: RoomId,
        retention: Retention,
    ) -> Result<Option<RoomRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE rooms SET retention_max_age = $1, retention_max_events = $2 \
             WHERE room_id = $3 RETURNING ",
            room_columns!()
        ))
        .bind(retention.max_age_seconds.map(limit))
        .bind(retention.max_events.map(limit))
        .bind(room_id.uuid())
        .fetch_optional(self.connection().await?)
        .await?;
        row.as_ref().map(room_from_row).transpose()
    }
}

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

    async fn set_last_seqs(&mut self, rooms: &[(RoomId, Seq)]) -> Result<(), StoreError> {
        if rooms.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE rooms SET last_seq = taken.last_seq \
             FROM UNNEST($1::uuid[], $2::bigint[]) AS taken (room_id, last_seq) \
             WHERE rooms.room_id = taken.room_id",
        )
        .bind(uuids(rooms.iter().map(|(room_id, _)| room_id)))
        .bind(rooms.iter().map(|(_, seq)| seq.get()).collect::<Vec<_>>())
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn insert_events(&mut self, events: &[&Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let events = events.iter();
        sqlx::query(
            "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, \
                                 sent_at, target_seq, emoji, reply_to) \
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], \
                                  $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::text[], \
                                  $11::bigint[])",
        )
        .bind(uuids(events.clone().map(|e| &e.room_id)))
        .bind(events.clone().map(|e| e.seq.get()).collect::<Vec<_>>())
        .bind(events.clone().map(|e| e.message_id).collect::<Vec<_>>())
        .bind(events.clone().map(|e| e.kind.as_str()).collect::<Vec<_>>())
        .bind(
            events
                .clone()
                .map(|e| e.sender.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(events.clone().map(|e| text(&e.message)).collect::<Vec<_>>())
        .bind(
            events
                .clone()
                .map(|e| e.client_msg_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .clone()
                .map(|e| e.sent_at.millis())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .clone()
                .map(|e| e.target_seq.map(Seq::get))
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .clone()
                .map(|e| e.emoji.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(events.map(|e| e.reply_to.map(Seq::get)).collect::<Vec<_>>())
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
        .bind(members.iter().map(|m| m.instance.uuid()).collect::<Vec<_>>())
        .bind(members.iter().map(|m| m.session).collect::<Vec<_>>())
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
            "INSERT INTO members (instance_id, session_id, room_id, sender, entered_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::bigint[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(
            members
                .iter()
                .map(|entered| entered.member.instance.uuid())
                .collect::<Vec<_>>(),
        )
        .bind(members.iter().map(|e| e.member.session).collect::<Vec<_>>())
        .bind(uuids(members.iter().map(|e| &e.member.room_id)))
        .bind(members.iter().map(|e| e.sender).collect::<Vec<_>>())
        .bind(members.iter().map(|e| e.at.millis()).collect::<Vec<_>>())
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn find_resent(&mut self, keys: &[ResendKey<'_>]) -> Result<Vec<Event>, StoreError> {
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
        .bind(keys.iter().map(|(_, sender, _)| *sender).collect::<Vec<_>>())
        .bind(keys.iter().map(|(.., id)| *id).collect::<Vec<_>>())
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter().map(event_from_row).collect()
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

/// A retention limit as stored (SQL has no unsigned 64-bit integer; limits fit in 63 bits).
fn limit(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
