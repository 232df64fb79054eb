//! SQLite backend: one local file in WAL mode. `synchronous = FULL` makes every commit durable;
//! the writer's group commit keeps that to one fsync per batch, not per message (with
//! `CHAT_DURABILITY=os`, `NORMAL`: a commit is in the operating system's hands, and the WAL is
//! flushed only at checkpoints). Readers share
//! a pool; the writer has a connection of its own (reopened if it breaks), so SQLite's
//! one-writer rule never makes two of our connections wait on each other.

mod batch;
mod changes;
mod checkpoint;
mod connection;
mod history;
mod liveness;
mod rows;
mod rules;
mod upkeep;
mod webhooks;
mod writer;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection};

use self::liveness::SqliteLiveness;
use self::rows::{in_rooms, parse_room_id, room_from_row};
use self::webhooks::SqliteWebhooks;
use super::deadline::Deadlined;
use super::{
    MemberCursor, MembersPage, RoomRecord, Storage, Store, StoreError, StoreWriter,
    WEBHOOK_CONNECTIONS, Webhooks, members_page, parse_seq,
};
use crate::config::Durability;
use crate::domain::{InstanceId, RoomId, Seq};

use connection::SqliteWriteConnection;

/// Rows per multi-row statement, well under SQLite's limit of 32,766 bound values.
const ROWS_PER_STATEMENT: usize = 1000;
/// How long a connection waits for SQLite's write lock (held by another process) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Page cache per connection: 32 MiB (negative means KiB) instead of SQLite's 2 MiB, so the
/// pages each batch writes stay cached (measured: about 8% more delivered events/s).
const PAGE_CACHE: &str = "-32768";
/// WAL pages between automatic checkpoints (about 40 MiB; SQLite's default is 1,000). A page
/// that many batches touch (the events table's and indexes' hot leaves) is copied into the
/// database once per checkpoint, so fewer checkpoints copy far less, and the writer, which
/// runs them, stalls less often. Measured on 2 cores with fsync per batch: TALKs stored per
/// second 16.7k -> 21.4k, fan-out (100 rooms x 10) delivered events 115k -> 150k per second;
/// checkpointing from another connection instead gained nothing, and `mmap_size` nothing.
const CHECKPOINT_PAGES: &str = "10000";

/// Opens (creating if missing) the database file, applies migrations, and returns its readers,
/// its writer and the heartbeat of `instance`.
pub async fn connect(
    url: &str,
    max_connections: u32,
    instance: InstanceId,
    durability: Durability,
) -> Result<Storage, StoreError> {
    let options = options(url)?;
    let write_options = match durability {
        Durability::Fsync => options.clone(),
        Durability::Os => options.clone().synchronous(SqliteSynchronous::Normal),
    };
    let writes = SqliteConnection::connect_with(&write_options).await?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let reads = pool(max_connections, in_memory)
        .connect_with(options.clone())
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&reads).await?;
    let hooks = webhook_pool(&options, &reads, in_memory).await?;
    let store = Arc::new(Deadlined(SqliteStore {
        pool: reads.clone(),
    }));
    if durability == Durability::Os && !in_memory {
        let checkpoints = SqliteConnection::connect_with(&options).await?;
        tokio::spawn(checkpoint::now_and_then(
            checkpoints,
            Arc::downgrade(&store),
        ));
    }
    Ok(Storage {
        store,
        webhooks: Webhooks {
            store: Arc::new(SqliteWebhooks {
                pool: hooks.clone(),
            }),
            history: Arc::new(Deadlined(SqliteStore { pool: hooks })),
        },
        writer: StoreWriter::new(
            Box::new(SqliteWriteConnection::new(write_options, writes)),
            instance,
        ),
        liveness: Arc::new(SqliteLiveness {
            pool: reads,
            instance: instance.to_string(),
        }),
    })
}

/// How every connection to the file is opened: WAL, an fsync per commit.
fn options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("cache_size", PAGE_CACHE)
        // A multi-row INSERT into a table with a unique index keeps a statement journal; in
        // memory, not a temporary file written page by page (fan-out: 101k -> 115k events/s).
        .pragma("temp_store", "memory")
        .pragma("wal_autocheckpoint", CHECKPOINT_PAGES))
}

/// The webhooks' own connections. A delivery position needs to survive the process being
/// killed, which WAL gives without an fsync of its own (`synchronous = NORMAL`): a position
/// lost with the machine's power only means an event sent again, with the same `webhook-id`.
/// An in-memory database has one pool, shared.
async fn webhook_pool(
    options: &SqliteConnectOptions,
    reads: &SqlitePool,
    in_memory: bool,
) -> Result<SqlitePool, StoreError> {
    if in_memory {
        return Ok(reads.clone());
    }
    let options = options.clone().synchronous(SqliteSynchronous::Normal);
    Ok(pool(WEBHOOK_CONNECTIONS, false)
        .connect_with(options)
        .await?)
}

fn pool(max_connections: u32, in_memory: bool) -> SqlitePoolOptions {
    let pool = SqlitePoolOptions::new().max_connections(max_connections);
    if !in_memory {
        return pool;
    }
    // An in-memory database is gone once its last connection closes: keep one open.
    pool.min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
}

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Rooms and a seq of each, from a query that ends with `room_id IN `.
    async fn room_seqs(
        &self,
        select: &str,
        rooms: &[RoomId],
    ) -> Result<HashMap<RoomId, Seq>, StoreError> {
        let mut query = QueryBuilder::<Sqlite>::new(select);
        let rows = in_rooms(&mut query, rooms, "")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let room_id = parse_room_id(row.try_get("room_id")?)?;
                Ok((room_id, parse_seq(row.try_get("last_seq")?)?))
            })
            .collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn room(&self, room_id: RoomId) -> Result<Option<RoomRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms WHERE room_id = ?"
        ))
        .bind(room_id.to_string())
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
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT marker.room_id, (SELECT COUNT(*) FROM events \
               WHERE events.room_id = marker.room_id AND events.seq > marker.read_seq \
                 AND events.kind = 'TALK' AND events.deleted = 0 \
                 AND events.sender <> marker.sender) AS unread \
             FROM read_markers AS marker WHERE marker.sender = ",
        );
        query
            .push_bind(reader.to_owned())
            .push(" AND marker.room_id IN ");
        let rows = in_rooms(&mut query, rooms, "")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let unread: i64 = row.try_get("unread")?;
                let room_id = parse_room_id(row.try_get("room_id")?)?;
                Ok((room_id, u64::try_from(unread).unwrap_or(0)))
            })
            .collect()
    }

    async fn member_counts(&self, rooms: &[RoomId]) -> Result<HashMap<RoomId, usize>, StoreError> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT room_id, COUNT(*) AS members FROM members WHERE room_id IN ",
        );
        let rows = in_rooms(&mut query, rooms, " GROUP BY room_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let count: i64 = row.try_get("members")?;
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                Ok((parse_room_id(row.try_get("room_id")?)?, count))
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
            "WITH page AS ( \
                 SELECT sender, COUNT(*) AS sessions, MIN(entered_at) AS since FROM members \
                 WHERE room_id = ?1 GROUP BY sender \
                 HAVING (MIN(entered_at), sender) > (?2, ?3) \
                 ORDER BY since, sender LIMIT ?4 \
             ) \
             SELECT rooms.last_seq, page.sender, page.sessions, page.since, \
                    COALESCE(read_markers.read_seq, 0) AS read_seq \
             FROM rooms \
             LEFT JOIN page ON TRUE \
             LEFT JOIN read_markers \
               ON read_markers.room_id = rooms.room_id AND read_markers.sender = page.sender \
             WHERE rooms.room_id = ?1 \
             ORDER BY page.since, page.sender",
        )
        .bind(room_id.to_string())
        .bind(after.map_or(i64::MIN, |cursor| cursor.since.millis()))
        .bind(after.map_or("", |cursor| cursor.sender.as_str()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        members_page(&rows)
    }

    async fn last_seqs(&self, rooms: &[RoomId]) -> Result<HashMap<RoomId, Seq>, StoreError> {
        self.room_seqs(
            "SELECT room_id, last_seq FROM rooms WHERE room_id IN ",
            rooms,
        )
        .await
    }

    async fn deleted_last_seqs(
        &self,
        rooms: &[RoomId],
    ) -> Result<HashMap<RoomId, Seq>, StoreError> {
        self.room_seqs(
            "SELECT room_id, last_seq FROM room_purges WHERE room_id IN ",
            rooms,
        )
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
