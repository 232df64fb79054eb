//! Every write, on the writer's own connection: rooms created and deleted, events appended in
//! group-commit batches, and deleted rooms' events purged a chunk at a time.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Acquire, QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::{parse_room_id, parse_seq, room_from_row};
use crate::domain::{Event, NewEvent, RoomId, RoomName, Seq, Timestamp};
use crate::store::{Refused, RoomRecord, StoreError, StoreWriter};

/// Rows per multi-row statement, well under SQLite's limit of 32,766 bound values.
const ROWS_PER_STATEMENT: usize = 1000;
/// SQLite's primary result code for a violated constraint (including a trigger's RAISE).
const SQLITE_CONSTRAINT: i32 = 19;
/// Takes the write lock when the transaction starts: this connection only ever writes.
const BEGIN: &str = "BEGIN IMMEDIATE";

pub struct SqliteWriter {
    pool: SqlitePool,
}

impl SqliteWriter {
    pub(super) fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The fast path: one seq reservation per room and one multi-row insert, in one transaction.
    async fn append_together(
        &self,
        events: &mut [Event],
    ) -> Result<Vec<Result<(), Refused>>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let mut next = reserve_seqs(&mut tx, &counts_per_room(events)).await?;
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events.iter_mut() {
            let Some(seq) = next.get_mut(&event.room_id) else {
                outcomes.push(Err(Refused::RoomGone));
                continue;
            };
            event.seq = *seq;
            *seq = seq.next().ok_or_else(|| exhausted(event.room_id))?;
            outcomes.push(Ok(()));
        }
        let stored: Vec<&Event> = events
            .iter()
            .zip(&outcomes)
            .filter_map(|(event, outcome)| outcome.is_ok().then_some(event))
            .collect();
        insert_events(&mut tx, &stored).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The slow path, after the fast one failed: each event under a savepoint of its own, so an
    /// event the database refuses is rolled back alone and the others still commit together.
    /// A failure that is not about one event (I/O, a missing table) fails the whole batch.
    async fn append_one_by_one(
        &self,
        events: &mut [Event],
    ) -> Result<Vec<Result<(), Refused>>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events.iter_mut() {
            let mut savepoint = (&mut tx).begin().await?;
            let outcome = match store_one(&mut savepoint, event).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(Refused::RoomGone),
                Err(error) if refuses_the_event(&error) => {
                    tracing::warn!(%error, room_id = %event.room_id, "the database refused an event");
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

fn exhausted(room_id: RoomId) -> StoreError {
    StoreError::Corrupt(format!("room {room_id} has used every seq"))
}

/// Whether the database refused this one event (a constraint or a trigger), rather than failed.
fn refuses_the_event(error: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(error)) = error else {
        return false;
    };
    let code = error.code().and_then(|code| code.parse::<i32>().ok());
    code.is_some_and(|code| code & 0xff == SQLITE_CONSTRAINT)
}

/// How many events of the batch go to each room, rooms in order of first appearance.
fn counts_per_room(events: &[Event]) -> Vec<(RoomId, i64)> {
    let mut counts: Vec<(RoomId, i64)> = Vec::new();
    for event in events {
        match counts.iter_mut().find(|(room, _)| *room == event.room_id) {
            Some((_, count)) => *count += 1,
            None => counts.push((event.room_id, 1)),
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
async fn insert_events(conn: &mut SqliteConnection, events: &[&Event]) -> Result<(), StoreError> {
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) ",
        );
        insert.push_values(chunk, |mut row, event| {
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

/// Reserves the next seq of the event's room and inserts it; false when the room is gone.
async fn store_one(conn: &mut SqliteConnection, event: &mut Event) -> Result<bool, StoreError> {
    let reserved: Option<i64> = sqlx::query_scalar(
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE room_id = ? RETURNING last_seq",
    )
    .bind(event.room_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(seq) = reserved.and_then(Seq::new) else {
        return Ok(false);
    };
    event.seq = seq;
    insert_events(conn, &[event]).await?;
    Ok(true)
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
        let sent_at = Timestamp::now();
        let mut events: Vec<Event> = batch
            .into_iter()
            .map(|new| Event::stored(new, Seq::ZERO, Uuid::new_v4(), sent_at))
            .collect();
        let outcomes = match self.append_together(&mut events).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::warn!(%error, batch = events.len(), "a batch failed; storing it event by event");
                self.append_one_by_one(&mut events).await?
            }
        };
        let results = events.into_iter().zip(outcomes);
        Ok(results
            .map(|(event, outcome)| outcome.map(|()| event))
            .collect())
    }

    async fn delete_room(&mut self, room_id: RoomId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let last: Option<i64> =
            sqlx::query_scalar("DELETE FROM rooms WHERE room_id = ? RETURNING last_seq")
                .bind(room_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(last) = last else {
            return Ok(false);
        };
        if last > 0 {
            sqlx::query("INSERT INTO room_purges (room_id, last_seq) VALUES (?, ?)")
                .bind(room_id.to_string())
                .bind(last)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
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
}
