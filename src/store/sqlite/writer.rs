//! Every write, on the writer's own connection: rooms created and deleted, events appended in
//! group-commit batches with the memberships they change, deleted rooms' events purged a chunk
//! at a time, and this instance's heartbeat and the reaping of dead ones.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Acquire, QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{parse_room_id, parse_seq, room_from_row};
use crate::domain::{Event, InstanceId, NewEvent, RoomId, RoomName, Seq, Timestamp};
use crate::store::{
    Batches, MemberKey, Pending, Refused, RoomRecord, StoreError, StoreWriter, append_batch,
    departures, entering_rows, exhausted, leaving_rows, refuse_non_members, stored_events,
};

/// Rows per multi-row statement, well under SQLite's limit of 32,766 bound values.
const ROWS_PER_STATEMENT: usize = 1000;
/// SQLite's primary result code for a violated constraint (including a trigger's RAISE).
const SQLITE_CONSTRAINT: i32 = 19;
/// Takes the write lock when the transaction starts: this connection only ever writes.
const BEGIN: &str = "BEGIN IMMEDIATE";

pub struct SqliteWriter {
    pool: SqlitePool,
    instance: String,
}

impl SqliteWriter {
    pub(super) fn new(pool: SqlitePool, instance: InstanceId) -> Self {
        Self {
            pool,
            instance: instance.to_string(),
        }
    }
}

#[async_trait]
impl Batches for SqliteWriter {
    /// The fast path: one seq reservation per room and one multi-row insert, in one transaction.
    async fn together(
        &self,
        batch: &mut [Pending],
    ) -> Result<Vec<Result<(), Refused>>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let outcomes = store_batch(&mut tx, &self.instance, batch).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The slow path, after the fast one failed: each event under a savepoint of its own, so an
    /// event the database refuses is rolled back alone and the others still commit together.
    /// A failure that is not about one event (I/O, a missing table) fails the whole batch.
    async fn one_by_one(
        &self,
        batch: &mut [Pending],
    ) -> Result<Vec<Result<(), Refused>>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for pending in batch.chunks_mut(1) {
            let mut savepoint = (&mut tx).begin().await?;
            let outcome = match store_batch(&mut savepoint, &self.instance, pending).await {
                Ok(mut one) => one.pop().unwrap_or(Err(Refused::RoomGone)),
                Err(error) if refuses_the_event(&error) => {
                    let room_id = pending[0].event.room_id;
                    tracing::warn!(%error, %room_id, "the database refused an event");
                    Err(Refused::Rejected)
                }
                Err(error) => return Err(error),
            };
            match outcome {
                Ok(()) => savepoint.commit().await?,
                Err(_) => savepoint.rollback().await?,
            }
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// Whether the database refused this one event (a constraint or a trigger), rather than failed.
fn refuses_the_event(error: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(error)) = error else {
        return false;
    };
    let code = error.code().and_then(|code| code.parse::<i32>().ok());
    code.is_some_and(|code| code & 0xff == SQLITE_CONSTRAINT)
}

/// Gives each event its room's next seq and stores it with the membership it changes; an
/// event whose room is gone is refused, and so is the LEAVE of a session that is no member.
async fn store_batch(
    conn: &mut SqliteConnection,
    instance: &str,
    batch: &mut [Pending],
) -> Result<Vec<Result<(), Refused>>, StoreError> {
    let present = end_memberships(conn, instance, &leaving_rows(batch)).await?;
    let mut outcomes = refuse_non_members(batch, &present);
    let mut next = reserve_seqs(conn, &counts_per_room(batch, &outcomes)).await?;
    for (pending, outcome) in batch.iter_mut().zip(outcomes.iter_mut()) {
        let event = &mut pending.event;
        if outcome.is_err() {
            continue;
        }
        let Some(seq) = next.get_mut(&event.room_id) else {
            *outcome = Err(Refused::RoomGone);
            continue;
        };
        event.seq = *seq;
        *seq = seq.next().ok_or_else(|| exhausted(event.room_id))?;
    }
    let stored: Vec<&Pending> = batch
        .iter()
        .zip(&outcomes)
        .filter_map(|(pending, outcome)| outcome.is_ok().then_some(pending))
        .collect();
    insert_events(conn, &stored).await?;
    add_memberships(conn, instance, &entering_rows(batch, &outcomes)).await?;
    Ok(outcomes)
}

/// How many events of the batch, of those not refused yet, go to each room, rooms in order of
/// first appearance.
fn counts_per_room(batch: &[Pending], outcomes: &[Result<(), Refused>]) -> Vec<(RoomId, i64)> {
    let mut counts: Vec<(RoomId, i64)> = Vec::new();
    for (pending, _) in batch.iter().zip(outcomes).filter(|(_, o)| o.is_ok()) {
        let room_id = pending.event.room_id;
        match counts.iter_mut().find(|(room, _)| *room == room_id) {
            Some((_, count)) => *count += 1,
            None => counts.push((room_id, 1)),
        }
    }
    counts
}

/// Reserves each room's share of consecutive seqs in one statement per chunk of rooms, and
/// returns the first seq of each share; a room missing from the result is gone.
async fn reserve_seqs(
    conn: &mut SqliteConnection,
    counts: &[(RoomId, i64)],
) -> Result<HashMap<RoomId, Seq>, StoreError> {
    let mut first_seqs = HashMap::with_capacity(counts.len());
    for chunk in counts.chunks(ROWS_PER_STATEMENT) {
        let mut update = QueryBuilder::<Sqlite>::new(
            "UPDATE rooms SET last_seq = last_seq + shares.column2 FROM (",
        );
        update.push_values(chunk, |mut row, (room_id, count)| {
            row.push_bind(room_id.to_string()).push_bind(*count);
        });
        update.push(
            ") AS shares WHERE rooms.room_id = shares.column1 \
             RETURNING rooms.room_id, rooms.last_seq",
        );
        for row in update.build().fetch_all(&mut *conn).await? {
            let (room_id, first) = first_of_share(&row, chunk)?;
            first_seqs.insert(room_id, first);
        }
    }
    Ok(first_seqs)
}

/// The room and first seq of one reserved share.
fn first_of_share(row: &SqliteRow, chunk: &[(RoomId, i64)]) -> Result<(RoomId, Seq), StoreError> {
    let room_id = parse_room_id(row.try_get(0)?)?;
    let last: i64 = row.try_get(1)?;
    let count = chunk
        .iter()
        .find_map(|(id, count)| (*id == room_id).then_some(*count))
        .ok_or_else(|| StoreError::Corrupt(format!("unexpected room {room_id}")))?;
    let first = last
        .checked_sub(count - 1)
        .and_then(Seq::new)
        .ok_or_else(|| StoreError::Corrupt(format!("room {room_id} at seq {last}")))?;
    Ok((room_id, first))
}

/// Inserts stored events with one multi-row statement per chunk.
async fn insert_events(conn: &mut SqliteConnection, batch: &[&Pending]) -> Result<(), StoreError> {
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) ",
        );
        insert.push_values(chunk, |mut row, pending| {
            let event = &pending.event;
            row.push_bind(event.room_id.to_string())
                .push_bind(event.seq.get())
                .push_bind(event.message_id.to_string())
                .push_bind(event.kind.as_str())
                .push_bind(event.sender.clone())
                .push_bind(event.message.clone())
                .push_bind(event.client_msg_id.clone())
                .push_bind(event.sent_at.millis());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Ends the given memberships, returning those that were stored (the others' LEAVEs are
/// refused).
async fn end_memberships(
    conn: &mut SqliteConnection,
    instance: &str,
    leaving: &[MemberKey],
) -> Result<HashSet<MemberKey>, StoreError> {
    let mut present = HashSet::with_capacity(leaving.len());
    for (session, room_id) in leaving {
        let ended = sqlx::query(
            "DELETE FROM members WHERE instance_id = ? AND session_id = ? AND room_id = ?",
        )
        .bind(instance)
        .bind(session)
        .bind(room_id.to_string())
        .execute(&mut *conn)
        .await?;
        if ended.rows_affected() > 0 {
            present.insert((*session, *room_id));
        }
    }
    Ok(present)
}

/// Stores the memberships the batch's ENTERs begin.
async fn add_memberships(
    conn: &mut SqliteConnection,
    instance: &str,
    entering: &[(MemberKey, &str)],
) -> Result<(), StoreError> {
    for chunk in entering.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT OR IGNORE INTO members (instance_id, session_id, room_id, sender) ",
        );
        insert.push_values(chunk, |mut row, ((session, room_id), sender)| {
            row.push_bind(instance.to_owned())
                .push_bind(*session)
                .push_bind(room_id.to_string())
                .push_bind(sender.to_string());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The cut-off for "silent for `silence`", in epoch milliseconds.
fn silent_since(silence: Duration) -> i64 {
    let silence = i64::try_from(silence.as_millis()).unwrap_or(i64::MAX);
    Timestamp::now().millis().saturating_sub(silence)
}

#[async_trait]
impl StoreWriter for SqliteWriter {
    async fn create_room(
        &mut self,
        name: &RoomName,
        now: Timestamp,
    ) -> Result<RoomRecord, StoreError> {
        let row = sqlx::query(
            "INSERT INTO rooms (room_id, name, created_at) VALUES (?1, ?2, \
             MAX(?3, COALESCE((SELECT created_at FROM rooms ORDER BY position DESC LIMIT 1), ?3))) \
             RETURNING room_id, name, created_at, last_seq, position",
        )
        .bind(RoomId::random().to_string())
        .bind(name.as_str())
        .bind(now.millis())
        .fetch_one(&self.pool)
        .await?;
        room_from_row(&row)
    }

    async fn append(
        &mut self,
        batch: Vec<NewEvent>,
    ) -> Result<Vec<Result<Event, Refused>>, StoreError> {
        append_batch(self, batch).await
    }

    async fn delete_room(&mut self, room_id: RoomId) -> Result<Option<Seq>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let last: Option<i64> =
            sqlx::query_scalar("DELETE FROM rooms WHERE room_id = ? RETURNING last_seq")
                .bind(room_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(last) = last else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM members WHERE room_id = ?")
            .bind(room_id.to_string())
            .execute(&mut *tx)
            .await?;
        if last > 0 {
            sqlx::query("INSERT INTO room_purges (room_id, last_seq) VALUES (?, ?)")
                .bind(room_id.to_string())
                .bind(last)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        parse_seq(last).map(Some)
    }

    async fn purge_step(&mut self, limit: u32) -> Result<bool, StoreError> {
        let pending =
            sqlx::query("SELECT room_id, last_seq, purged_through FROM room_purges LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        let Some(pending) = pending else {
            return Ok(false);
        };
        let room_id: &str = pending.try_get("room_id")?;
        let last = parse_seq(pending.try_get("last_seq")?)?;
        let upto = parse_seq(pending.try_get("purged_through")?)?
            .saturating_add(limit)
            .min(last);
        let mut tx = self.pool.begin_with(BEGIN).await?;
        sqlx::query("DELETE FROM events WHERE room_id = ? AND seq <= ?")
            .bind(room_id)
            .bind(upto.get())
            .execute(&mut *tx)
            .await?;
        let progress = if upto == last {
            sqlx::query("DELETE FROM room_purges WHERE room_id = ?").bind(room_id)
        } else {
            sqlx::query("UPDATE room_purges SET purged_through = ? WHERE room_id = ?")
                .bind(upto.get())
                .bind(room_id)
        };
        progress.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn register(&mut self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (instance_id, heartbeat_at) VALUES (?1, ?2) \
             ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = ?2",
        )
        .bind(&self.instance)
        .bind(Timestamp::now().millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn heartbeat(&mut self) -> Result<bool, StoreError> {
        let renewed = sqlx::query("UPDATE instances SET heartbeat_at = ? WHERE instance_id = ?")
            .bind(Timestamp::now().millis())
            .bind(&self.instance)
            .execute(&self.pool)
            .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn dead_instances(&mut self, silence: Duration) -> Result<Vec<InstanceId>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT instance_id FROM instances WHERE instance_id != ? AND heartbeat_at < ?",
        )
        .bind(&self.instance)
        .bind(silent_since(silence))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|raw| {
                uuid::Uuid::try_parse(raw)
                    .map(InstanceId::from_uuid)
                    .map_err(|_| StoreError::Corrupt(format!("instance id {raw:?}")))
            })
            .collect()
    }

    async fn reap(
        &mut self,
        instance: InstanceId,
        silence: Option<Duration>,
    ) -> Result<Vec<Event>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let cutoff = silence.map_or(i64::MAX, silent_since);
        let forgotten =
            sqlx::query("DELETE FROM instances WHERE instance_id = ? AND heartbeat_at < ?")
                .bind(instance.to_string())
                .bind(cutoff)
                .execute(&mut *tx)
                .await?;
        if forgotten.rows_affected() == 0 && silence.is_some() {
            return Ok(Vec::new());
        }
        let members = sqlx::query(
            "DELETE FROM members WHERE instance_id = ? RETURNING room_id, sender, session_id",
        )
        .bind(instance.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let mut gone = Vec::with_capacity(members.len());
        for row in &members {
            let session: i64 = row.try_get("session_id")?;
            let room_id = parse_room_id(row.try_get("room_id")?)?;
            gone.push((room_id, session, row.try_get::<String, _>("sender")?));
        }
        let mut leaves = departures(gone)?;
        let outcomes = store_batch(&mut tx, &self.instance, &mut leaves).await?;
        tx.commit().await?;
        let stored = stored_events(leaves, outcomes);
        Ok(stored.into_iter().filter_map(Result::ok).collect())
    }
}
