//! SQLite backend: one local file in WAL mode. `synchronous = FULL` makes every commit durable;
//! the sequencer's group commit keeps that to one fsync per batch, not per message.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::{EventRange, RoomGone, RoomRecord, Store, StoreError};
use crate::domain::{Event, EventKind, NewEvent, RoomId, RoomName, Timestamp};

/// How long a connection waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

fn room_from_row(row: &SqliteRow) -> Result<RoomRecord, StoreError> {
    Ok(RoomRecord {
        room_id: parse_room_id(row.try_get("room_id")?)?,
        name: row.try_get("name")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        last_seq: row.try_get("last_seq")?,
        position: row.try_get("position")?,
    })
}

fn event_from_row(row: &SqliteRow) -> Result<Event, StoreError> {
    let kind: &str = row.try_get("kind")?;
    let message_id: &str = row.try_get("message_id")?;
    Ok(Event {
        kind: EventKind::from_stored(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("event kind {kind:?}")))?,
        room_id: parse_room_id(row.try_get("room_id")?)?,
        seq: row.try_get("seq")?,
        message_id: Uuid::try_parse(message_id)
            .map_err(|_| StoreError::Corrupt(format!("message id {message_id:?}")))?,
        sender: row.try_get("sender")?,
        message: row.try_get("message")?,
        sent_at: Timestamp::from_millis(row.try_get("sent_at")?),
        client_msg_id: row.try_get("client_msg_id")?,
    })
}

fn parse_room_id(raw: &str) -> Result<RoomId, StoreError> {
    RoomId::parse(raw).map_err(|_| StoreError::Corrupt(format!("room id {raw:?}")))
}

/// Reserves `count` consecutive seqs in a room; returns the first, or None if the room is gone.
async fn reserve_seqs(
    conn: &mut SqliteConnection,
    room_id: RoomId,
    count: i64,
) -> Result<Option<i64>, StoreError> {
    let last: Option<i64> = sqlx::query_scalar(
        "UPDATE rooms SET last_seq = last_seq + ? WHERE room_id = ? RETURNING last_seq",
    )
    .bind(count)
    .bind(room_id.to_string())
    .fetch_optional(conn)
    .await?;
    Ok(last.map(|last| last - count + 1))
}

async fn insert_event(conn: &mut SqliteConnection, event: &Event) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (room_id, seq, message_id, kind, sender, message, client_msg_id, sent_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(event.room_id.to_string())
    .bind(event.seq)
    .bind(event.message_id.to_string())
    .bind(event.kind.as_str())
    .bind(&event.sender)
    .bind(&event.message)
    .bind(&event.client_msg_id)
    .bind(event.sent_at.millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// The first seq of each room's share of the batch (None: the room is gone).
async fn reserve_for_batch(
    conn: &mut SqliteConnection,
    batch: &[NewEvent],
) -> Result<HashMap<RoomId, Option<i64>>, StoreError> {
    let mut counts: Vec<(RoomId, i64)> = Vec::new();
    for new in batch {
        match counts.iter_mut().find(|(room, _)| *room == new.room_id) {
            Some((_, count)) => *count += 1,
            None => counts.push((new.room_id, 1)),
        }
    }
    let mut next = HashMap::with_capacity(counts.len());
    for (room_id, count) in counts {
        next.insert(room_id, reserve_seqs(conn, room_id, count).await?);
    }
    Ok(next)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_room(&self, name: &RoomName) -> Result<RoomRecord, StoreError> {
        let row = sqlx::query(
            "INSERT INTO rooms (room_id, name, created_at) VALUES (?, ?, ?) \
             RETURNING room_id, name, created_at, last_seq, position",
        )
        .bind(RoomId::random().to_string())
        .bind(name.as_str())
        .bind(Timestamp::now().millis())
        .fetch_one(&self.pool)
        .await?;
        room_from_row(&row)
    }

    async fn room(&self, room_id: RoomId) -> Result<Option<RoomRecord>, StoreError> {
        sqlx::query(
            "SELECT room_id, name, created_at, last_seq, position FROM rooms WHERE room_id = ?",
        )
        .bind(room_id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(room_from_row)
        .transpose()
    }

    async fn rooms(&self, before: Option<i64>, limit: u32) -> Result<Vec<RoomRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT room_id, name, created_at, last_seq, position FROM rooms \
             WHERE position < ? ORDER BY position DESC LIMIT ?",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(room_from_row).collect()
    }

    async fn delete_room(&self, room_id: RoomId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = room_id.to_string();
        sqlx::query("DELETE FROM events WHERE room_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM rooms WHERE room_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn append(
        &self,
        batch: Vec<NewEvent>,
    ) -> Result<Vec<Result<Event, RoomGone>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut next_seq = reserve_for_batch(&mut tx, &batch).await?;
        let sent_at = Timestamp::now();
        let mut results = Vec::with_capacity(batch.len());
        for new in batch {
            let Some(Some(seq)) = next_seq.get_mut(&new.room_id) else {
                results.push(Err(RoomGone));
                continue;
            };
            let event = Event::stored(new, *seq, Uuid::new_v4(), sent_at);
            *seq += 1;
            insert_event(&mut tx, &event).await?;
            results.push(Ok(event));
        }
        tx.commit().await?;
        Ok(results)
    }

    async fn events(&self, room_id: RoomId, range: EventRange) -> Result<Vec<Event>, StoreError> {
        let query = match range {
            EventRange::Forward {
                after,
                before,
                limit,
            } => sqlx::query(
                "SELECT * FROM events WHERE room_id = ? AND seq > ? AND seq < ? \
                 ORDER BY seq ASC LIMIT ?",
            )
            .bind(room_id.to_string())
            .bind(after)
            .bind(before)
            .bind(limit),
            EventRange::Backward { before, limit } => sqlx::query(
                "SELECT * FROM (SELECT * FROM events WHERE room_id = ? AND seq > 0 AND seq < ? \
                 ORDER BY seq DESC LIMIT ?) ORDER BY seq ASC",
            )
            .bind(room_id.to_string())
            .bind(before)
            .bind(limit),
        };
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
