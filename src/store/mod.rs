//! Storage, so the backend is chosen by `DATABASE_URL`'s scheme and nothing above this module
//! sees SQL. [`Store`] reads, on a pool shared by every request and session. [`StoreWriter`]
//! writes, on a connection of its own that only the writer task holds, so no read can make a
//! write wait for a connection and writes of one instance never contend with each other.
//! [`Liveness`] heartbeats on a connection of its own too, so a busy writer never makes its
//! instance look dead.
//!
//! The database is the one authority on order: it gives each event its room's next `seq` in
//! the transaction that stores it, whichever instance's writer stores it. How a batch is stored
//! is written once (`transaction`); each backend only supplies the SQL of each step (`WriteTx`).
//! Presence lives here too: a session's membership is stored with its ENTER and removed with
//! its LEAVE, and each instance heartbeats, so the members of one that died are known and get
//! their LEAVEs.

/// The columns [`read_room`] reads, for every query that reads a room.
macro_rules! room_columns {
    () => {
        "room_id, name, created_at, last_seq, position, retention_max_age, \
         retention_max_events, erased_through, visibility"
    };
}

mod deadline;
mod postgres;
mod rows;
pub(crate) mod rules;
mod sqlite;
#[cfg(test)]
mod tests;
mod transaction;
pub(crate) mod webhooks;
mod write;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::Durability;
use crate::domain::{Event, InstanceId, Retention, RoomId, Seq, Timestamp, Visibility};

pub(crate) use rows::{
    REACTIONS_BETWEEN, attach_reactions, members_page, moderation_column, parse_seq, reaction_row,
    read_event, read_page, read_retention, read_room, read_target, talk_span,
};
pub use rules::{Admission, RoleRecord, Rules, SanctionKind, SanctionRecord};
pub use transaction::{ASK_AGAIN, InDoubt, Marks, StoreWriter, Unwritten, Written};
pub(crate) use webhooks::WEBHOOK_CONNECTIONS;
pub use webhooks::{Delivered, Positions, RoomPosition, WebhookRecord, WebhookStore, Webhooks};
pub(crate) use write::{
    Changes, Entered, Erasable, Membership, NextPurge, ReactionKey, ResendKey, Target, Upkeep,
    WriteConnection, WriteTx,
};

/// A room as stored. `position` is its place in creation order (the list cursor's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub room_id: RoomId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_seq: Seq,
    pub position: i64,
    /// The room's own limits (none set: the server's default, if any).
    pub retention: Retention,
    /// The oldest seq still stored (`last_seq + 1` when none is).
    pub first_seq: Seq,
    pub visibility: Visibility,
}

/// Which of a room's events to read; results always come back in ascending `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRange {
    /// The first `limit` events with `after < seq < before`.
    Forward { after: Seq, before: Seq, limit: u32 },
    /// The last `limit` events with `seq < before`.
    Backward { before: Seq, limit: u32 },
}

/// How much one page of a replay may hold: at most `events` events, and it ends with the event
/// whose text brings it to `bytes` (a page holds at least one event, whatever its size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit {
    pub events: u32,
    pub bytes: usize,
}

/// One sender in a room's members list: how many of its sessions are in the room, since when
/// (the first of them entered), and the highest seq it has read there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub sender: String,
    pub sessions: u32,
    pub since: Timestamp,
    pub read_seq: Seq,
}

/// Where a members page starts: after this sender, who is there since `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCursor {
    pub since: Timestamp,
    pub sender: String,
}

/// A page of a room's members, read in one statement with the room's newest seq, so a client
/// that applies the ENTER and LEAVE events after `as_of_seq` to it stays exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersPage {
    pub as_of_seq: Seq,
    /// Ordered by `since`, then `sender`.
    pub items: Vec<MemberRecord>,
}

/// Why one append of a batch was not stored while the rest of the batch went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The room does not exist (any more).
    RoomGone,
    /// The database refused this event (a constraint or trigger); the others were not affected.
    Rejected,
    /// A LEAVE of a session that is not a member (any more): its instance was taken for dead
    /// and its LEAVE stored already. No second LEAVE is stored.
    NotMember,
    /// An event whose `clientMsgId` its sender already used in the room: this is the first
    /// one, as stored.
    Duplicate(Box<Event>),
    /// A change or reply that names no TALK of the room that is not deleted.
    TargetNotFound(Seq),
    /// A change of someone else's TALK that the sender may not make.
    Forbidden(&'static str),
    /// A REACT made already, or an UNREACT of a reaction not made: nothing to store.
    NoChange(&'static str),
    /// A REACT with a new emoji on a TALK that has as many as it may.
    TooManyReactions,
    /// An ENTER of a name banned from the room.
    Banned,
    /// A revoke, or a grant of a lesser role, that would leave the room without an owner.
    LastOwner,
}

/// A storage failure. Its text is for logs only: it may hold SQL or paths.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("storage did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The writer could not store it with its batch (it logged why).
    #[error("the writer could not store it")]
    NotWritten,
    #[error("unsupported DATABASE_URL scheme: use sqlite://PATH or postgres://...")]
    UnsupportedUrl,
}

/// What one step of purging deleted rooms' events found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// It deleted a chunk; there may be more.
    Purged,
    /// Deleted rooms wait for their delay to pass.
    Waiting,
    /// No deleted room has events left.
    Done,
}

/// A room's events as storage answers them: every event in `seq` order, each TALK as it is now
/// (its latest text, its deletion, its reactions), on a pool of connections.
#[async_trait]
pub trait History: Send + Sync + 'static {
    /// A page of a room's events.
    async fn events(&self, room_id: RoomId, range: EventRange) -> Result<Vec<Event>, StoreError>;

    /// The TALKs that answer the TALK at `reply_to`, paged as [`History::events`] pages.
    async fn replies(
        &self,
        room_id: RoomId,
        reply_to: Seq,
        range: EventRange,
    ) -> Result<Vec<Event>, StoreError>;

    /// The events after `after`, ascending, as many as `limit` lets one page hold.
    async fn page_after(
        &self,
        room_id: RoomId,
        after: Seq,
        limit: PageLimit,
    ) -> Result<Vec<Event>, StoreError>;
}

/// Reads, on a pool of connections.
#[async_trait]
pub trait Store: History + Rules + Send + Sync + 'static {
    async fn room(&self, room_id: RoomId) -> Result<Option<RoomRecord>, StoreError>;

    /// How many sessions, on every instance, are members of each room (rooms with none are
    /// left out).
    async fn member_counts(&self, rooms: &[RoomId]) -> Result<HashMap<RoomId, usize>, StoreError>;

    /// Up to `limit` of a room's members after `after`, with the room's newest seq; None when
    /// the room does not exist.
    async fn members(
        &self,
        room_id: RoomId,
        after: Option<&MemberCursor>,
        limit: u32,
    ) -> Result<Option<MembersPage>, StoreError>;

    /// For each of these rooms where `reader` has a read marker: how many TALKs after it are
    /// neither deleted nor the reader's own.
    async fn unread_counts(
        &self,
        rooms: &[RoomId],
        reader: &str,
    ) -> Result<HashMap<RoomId, u64>, StoreError>;

    /// The newest seq of each room; rooms that do not exist (any more) are left out.
    async fn last_seqs(&self, rooms: &[RoomId]) -> Result<HashMap<RoomId, Seq>, StoreError>;

    /// The last seq of each of these rooms that was deleted and whose events are still being
    /// purged; others are left out.
    async fn deleted_last_seqs(&self, rooms: &[RoomId])
    -> Result<HashMap<RoomId, Seq>, StoreError>;

    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Waits for open connections to finish and closes them.
    async fn close(&self);
}

/// This instance among those sharing storage: its heartbeat, and who has gone silent. On a
/// connection of its own, so a heartbeat never waits behind appends.
#[async_trait]
pub trait Liveness: Send + Sync + 'static {
    /// Records this instance as alive.
    async fn register(&self) -> Result<(), StoreError>;

    /// Renews this instance's heartbeat; false when it is not registered any more, because the
    /// others took it for dead and stored its members' LEAVEs.
    async fn heartbeat(&self) -> Result<bool, StoreError>;

    /// Other instances whose latest heartbeat is older than `silence`, and those forgotten
    /// that still have members (a reap that stopped part way).
    async fn dead_instances(&self, silence: Duration) -> Result<Vec<InstanceId>, StoreError>;
}

/// A backend: its reading pool, its writer, its heartbeat, and its webhooks.
pub struct Storage {
    pub store: Arc<dyn Store>,
    pub webhooks: Webhooks,
    pub writer: StoreWriter,
    pub liveness: Arc<dyn Liveness>,
}

/// Opens the backend named by the URL's scheme and brings its schema up to date; the writer
/// and the heartbeat are `instance`'s, and the writer's commits as durable as `durability`.
pub async fn connect(
    url: &str,
    max_connections: u32,
    instance: InstanceId,
    durability: Durability,
) -> Result<Storage, StoreError> {
    if url.starts_with("sqlite:") {
        return sqlite::connect(url, max_connections, instance, durability).await;
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return postgres::connect(url, max_connections, instance, durability).await;
    }
    Err(StoreError::UnsupportedUrl)
}

/// A new SQLite file in `dir` (for the crate's own tests), as durable as by default.
#[cfg(test)]
pub async fn sqlite_in(dir: &std::path::Path, max_connections: u32) -> Storage {
    let url = format!("sqlite://{}", dir.join("chat.db").display());
    connect(
        &url,
        max_connections,
        InstanceId::random(),
        Durability::Fsync,
    )
    .await
    .expect("a SQLite file in a new directory")
}

/// Whether the backend at this URL is shared by several instances (PostgreSQL), rather than
/// owned by one process (a SQLite file).
pub fn is_shared(url: &str) -> bool {
    !url.starts_with("sqlite:")
}
