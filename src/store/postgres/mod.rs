//! PostgreSQL backend, shared by every instance. Readers share a pool; the writer has a
//! connection of its own (reopened if it breaks), so this instance's writes are one at a time,
//! as on SQLite, while several instances write concurrently, each event's seq taken under its
//! room row's lock; the heartbeat has a connection of its own too.
//!
//! Every connection tells the server how long anything may take, so a client that falls silent
//! (a frozen network, a paused process) holds no lock for more than a couple of seconds: the
//! server ends a transaction left idle, gives up a lock wait or a statement that runs long,
//! and probes the connection with TCP keepalives.

mod changes;
mod connection;
mod history;
mod liveness;
mod rules;
mod upkeep;
mod webhooks;
mod writer;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use uuid::Uuid;

use self::liveness::PgLiveness;
use self::webhooks::PgWebhooks;
use super::deadline::Deadlined;
use super::{
    MemberCursor, MembersPage, RoomRecord, Storage, Store, StoreError, StoreWriter,
    WEBHOOK_CONNECTIONS, Webhooks, members_page, parse_seq, read_event, read_room,
};
use crate::config::Durability;
use crate::domain::{Event, InstanceId, RoomId, Seq, Timestamp};

use connection::PgWriteConnection;

/// How long a request waits for a connection, or a connection for the server, before storage
/// counts as unavailable: while the database is unreachable, clients hear so in seconds, not
/// after sqlx's default 30 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What the server enforces on every connection. A transaction left idle (its client fell
/// silent between two statements) ends first, so another instance waiting for its room locks
/// waits about that long, well within its own lock timeout; the writer's own deadline
/// (`transaction::DEADLINE`) is longer than all of these, so the server's clean error comes first.
const SERVER_LIMITS: [(&str, &str); 7] = [
    ("idle_in_transaction_session_timeout", "2s"),
    ("lock_timeout", "4s"),
    ("statement_timeout", "6s"),
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
    ("tcp_user_timeout", "10000"),
];

/// What a migration's connection lifts of the server's own settings: a migration over
/// millions of events takes far longer than a statement may while serving, and an instance
/// that starts while another migrates waits for it (for sqlx's advisory lock), however long.
const MIGRATION_LIMITS: [(&str, &str); 3] = [
    ("idle_in_transaction_session_timeout", "0"),
    ("lock_timeout", "0"),
    ("statement_timeout", "0"),
];

/// Connects, applies migrations (under sqlx's advisory lock, so instances starting together
/// take turns), and returns the readers, the writer and the heartbeat of `instance`.
pub async fn connect(
    url: &str,
    max_connections: u32,
    instance: InstanceId,
    durability: Durability,
) -> Result<Storage, StoreError> {
    let base = PgConnectOptions::from_str(url)?.application_name("chat");
    migrate(base.clone().options(MIGRATION_LIMITS)).await?;
    let options = base.options(SERVER_LIMITS);
    let reads = pool(max_connections).connect_with(options.clone()).await?;
    let heartbeats = pool(1).connect_lazy_with(options.clone());
    let hooks = pool(WEBHOOK_CONNECTIONS).connect_lazy_with(options.clone());
    Ok(Storage {
        store: Arc::new(Deadlined(PgStore { pool: reads })),
        webhooks: Webhooks {
            store: Arc::new(PgWebhooks {
                pool: hooks.clone(),
            }),
            history: Arc::new(Deadlined(PgStore { pool: hooks })),
        },
        writer: StoreWriter::new(
            Box::new(PgWriteConnection::new(writer_options(options, durability))),
            instance,
        ),
        liveness: Arc::new(PgLiveness {
            pool: heartbeats,
            instance: instance.uuid(),
        }),
    })
}

/// The writer's connection: with `os` durability, its commits return before the WAL is
/// flushed (`synchronous_commit = off`: a crash of the database server, or of its machine,
/// may lose the last few hundred milliseconds of them; the chat process being killed loses
/// nothing).
fn writer_options(options: PgConnectOptions, durability: Durability) -> PgConnectOptions {
    match durability {
        Durability::Fsync => options,
        Durability::Os => options.options([("synchronous_commit", "off")]),
    }
}

/// Applies the migrations on a connection of their own.
async fn migrate(options: PgConnectOptions) -> Result<(), StoreError> {
    let connection = pool(1).connect_with(options).await?;
    let migrated = sqlx::migrate!("./migrations/postgres")
        .run(&connection)
        .await;
    connection.close().await;
    Ok(migrated?)
}

fn pool(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
}

pub struct PgStore {
    pool: PgPool,
}

fn room_from_row(row: &PgRow) -> Result<RoomRecord, StoreError> {
    let (retention, first_seq, visibility) = read_room(row)?;
    Ok(RoomRecord {
        room_id: RoomId::from_uuid(row.try_get("room_id")?),
        name: row.try_get("name")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        last_seq: parse_seq(row.try_get("last_seq")?)?,
        position: row.try_get("position")?,
        retention,
        first_seq,
        visibility,
    })
}

/// A room's id and newest seq.
fn room_seq_from_row(row: &PgRow) -> Result<(RoomId, Seq), StoreError> {
    let room_id = RoomId::from_uuid(row.try_get("room_id")?);
    Ok((room_id, parse_seq(row.try_get("last_seq")?)?))
}

fn event_from_row(row: &PgRow) -> Result<Event, StoreError> {
    let room_id = RoomId::from_uuid(row.try_get("room_id")?);
    read_event(row, room_id, row.try_get("message_id")?)
}

/// One value of each item, as an array for `UNNEST` (a statement's shape stays fixed
/// whatever the batch holds).
fn array<'a, K, T>(items: &'a [K], value: impl Fn(&'a K) -> T) -> Vec<T> {
    items.iter().map(value).collect()
}

fn uuids<'a>(rooms: impl IntoIterator<Item = &'a RoomId>) -> Vec<Uuid> {
    rooms.into_iter().map(|room_id| room_id.uuid()).collect()
}

#[async_trait]
impl Store for PgStore {
    async fn room(&self, room_id: RoomId) -> Result<Option<RoomRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms WHERE room_id = $1"
        ))
        .bind(room_id.uuid())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(room_from_row)
        .transpose()
    }

    async fn unread_counts(
        &self,
        rooms: &[RoomId],
        reader: &str,
    ) -> Result<HashMap<RoomId, u64>, StoreError> {
        // One count per room, over the primary key's range after the reader's marker.
        let rows = sqlx::query(
            "SELECT marker.room_id, (SELECT COUNT(*) FROM events \
               WHERE events.room_id = marker.room_id AND events.seq > marker.read_seq \
                 AND events.kind = 'TALK' AND NOT events.deleted \
                 AND events.sender <> marker.sender) AS unread \
             FROM read_markers AS marker WHERE marker.sender = $1 AND marker.room_id = ANY($2)",
        )
        .bind(reader)
        .bind(uuids(rooms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let unread: i64 = row.try_get("unread")?;
                let room_id = RoomId::from_uuid(row.try_get("room_id")?);
                Ok((room_id, u64::try_from(unread).unwrap_or(0)))
            })
            .collect()
    }

    async fn member_counts(&self, rooms: &[RoomId]) -> Result<HashMap<RoomId, usize>, StoreError> {
        let rows = sqlx::query(
            "SELECT room_id, COUNT(*) AS members FROM members WHERE room_id = ANY($1) \
             GROUP BY room_id",
        )
        .bind(uuids(rooms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let count: i64 = row.try_get("members")?;
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                Ok((RoomId::from_uuid(row.try_get("room_id")?), count))
            })
            .collect()
    }

    async fn members(
        &self,
        room_id: RoomId,
        after: Option<&MemberCursor>,
        limit: u32,
    ) -> Result<Option<MembersPage>, StoreError> {
        // One statement, so one snapshot: the members are exactly those of `last_seq`.
        let rows = sqlx::query(
            "SELECT rooms.last_seq, page.sender, page.sessions, page.since, \
                    COALESCE(read_markers.read_seq, 0) AS read_seq \
             FROM rooms \
             LEFT JOIN LATERAL ( \
                 SELECT sender, COUNT(*) AS sessions, MIN(entered_at) AS since FROM members \
                 WHERE members.room_id = rooms.room_id GROUP BY sender \
                 HAVING (MIN(entered_at), sender) > ($2, $3) \
                 ORDER BY since, sender LIMIT $4 \
             ) AS page ON TRUE \
             LEFT JOIN read_markers \
               ON read_markers.room_id = rooms.room_id AND read_markers.sender = page.sender \
             WHERE rooms.room_id = $1 \
             ORDER BY page.since, page.sender",
        )
        .bind(room_id.uuid())
        .bind(after.map_or(i64::MIN, |cursor| cursor.since.millis()))
        .bind(after.map_or("", |cursor| cursor.sender.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        members_page(&rows)
    }

    async fn last_seqs(&self, rooms: &[RoomId]) -> Result<HashMap<RoomId, Seq>, StoreError> {
        let rows = sqlx::query("SELECT room_id, last_seq FROM rooms WHERE room_id = ANY($1)")
            .bind(uuids(rooms))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(room_seq_from_row).collect()
    }

    async fn deleted_last_seqs(
        &self,
        rooms: &[RoomId],
    ) -> Result<HashMap<RoomId, Seq>, StoreError> {
        let rows = sqlx::query("SELECT room_id, last_seq FROM room_purges WHERE room_id = ANY($1)")
            .bind(uuids(rooms))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(room_seq_from_row).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
