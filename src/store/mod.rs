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
         retention_max_events, erased_through"
    };
}

mod deadline;
mod postgres;
mod sqlite;
#[cfg(test)]
mod tests;
mod transaction;
mod write;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{Stream, TryStreamExt};

use crate::domain::{Event, EventKind, InstanceId, Reaction, Retention, RoomId, Seq, Timestamp};

pub use transaction::{ASK_AGAIN, InDoubt, StoreWriter, Unwritten, Written};
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

/// Reads, on a pool of connections.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn room(&self, room_id: RoomId) -> Result<Option<RoomRecord>, StoreError>;

    /// Up to `limit` rooms created before `before` (a position), newest first.
    async fn rooms(&self, before: Option<i64>, limit: u32) -> Result<Vec<RoomRecord>, StoreError>;

    async fn events(&self, room_id: RoomId, range: EventRange) -> Result<Vec<Event>, StoreError>;

    /// The TALKs that answer the TALK at `reply_to`, paged as [`Store::events`] pages.
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

/// A backend: its reading pool, its writer and its heartbeat.
pub struct Storage {
    pub store: Arc<dyn Store>,
    pub writer: StoreWriter,
    pub liveness: Arc<dyn Liveness>,
}

/// Opens the backend named by the URL's scheme and brings its schema up to date; the writer
/// and the heartbeat are `instance`'s.
pub async fn connect(
    url: &str,
    max_connections: u32,
    instance: InstanceId,
) -> Result<Storage, StoreError> {
    if url.starts_with("sqlite:") {
        return sqlite::connect(url, max_connections, instance).await;
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return postgres::connect(url, max_connections, instance).await;
    }
    Err(StoreError::UnsupportedUrl)
}

/// Whether the backend at this URL is shared by several instances (PostgreSQL), rather than
/// owned by one process (a SQLite file).
pub fn is_shared(url: &str) -> bool {
    !url.starts_with("sqlite:")
}

/// Reads events from `rows` (ascending) until the page is full by `limit`: a page holds at
/// least one event, and ends with the one whose text reaches the byte bound.
pub(crate) async fn read_page<R>(
    mut rows: impl Stream<Item = Result<R, sqlx::Error>> + Unpin,
    limit: PageLimit,
    event_from_row: impl Fn(&R) -> Result<Event, StoreError>,
) -> Result<Vec<Event>, StoreError> {
    let (mut page, mut bytes) = (Vec::new(), 0);
    while bytes < limit.bytes
        && let Some(row) = rows.try_next().await?
    {
        let event = event_from_row(&row)?;
        bytes += event.text_bytes();
        page.push(event);
    }
    Ok(page)
}

/// The query, the same on either backend but for its placeholders, that reads the reactions
/// on a room's TALKs from `$2` to `$3`: for each TALK and emoji, the first
/// [`Reaction::MAX_SENDERS`] senders and how many there are, by TALK then by the REACT that
/// made each (so each emoji first appears where it was first used).
pub(crate) const REACTIONS_BETWEEN: &str = "SELECT target_seq, emoji, sender, total FROM ( \
       SELECT target_seq, emoji, sender, seq, \
              ROW_NUMBER() OVER (PARTITION BY target_seq, emoji ORDER BY seq) AS nth, \
              COUNT(*) OVER (PARTITION BY target_seq, emoji) AS total \
       FROM reactions WHERE room_id = $1 AND target_seq BETWEEN $2 AND $3) AS ranked \
     WHERE nth <= 100 ORDER BY target_seq, seq";

/// The lowest and highest seq of a page's TALKs; None when it holds none.
pub(crate) fn talk_span(events: &[Event]) -> Option<(Seq, Seq)> {
    let mut talks = events.iter().filter(|event| event.kind == EventKind::Talk);
    let first = talks.next()?.seq;
    Some((first, talks.next_back().map_or(first, |last| last.seq)))
}

/// Puts each TALK's reactions on it, from rows of [`REACTIONS_BETWEEN`]: (TALK, emoji,
/// sender, how many reacted so).
pub(crate) fn attach_reactions(events: &mut [Event], rows: Vec<(Seq, String, String, i64)>) {
    let mut rows = rows.into_iter().peekable();
    for event in events
        .iter_mut()
        .filter(|event| event.kind == EventKind::Talk)
    {
        while rows.next_if(|(target, ..)| *target < event.seq).is_some() {}
        while let Some((_, emoji, sender, total)) =
            rows.next_if(|(target, ..)| *target == event.seq)
        {
            match event
                .reactions
                .iter_mut()
                .find(|reaction| reaction.emoji == emoji)
            {
                Some(reaction) => reaction.senders.push(sender),
                None => event.reactions.push(Reaction {
                    emoji,
                    count: u32::try_from(total).unwrap_or(u32::MAX),
                    senders: vec![sender],
                }),
            }
        }
    }
}

/// The page a members query's rows make, on either backend. Each row holds, by position, the
/// room's newest seq, then one sender's name, sessions, since and read seq (all null when the
/// room has nobody on this page). No row: the room does not exist.
pub(crate) fn members_page<R>(rows: &[R]) -> Result<Option<MembersPage>, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let as_of_seq = parse_seq(first.try_get(0)?)?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(sender) = row.try_get::<Option<String>, _>(1)? else {
            continue;
        };
        let sessions: i64 = row.try_get(2)?;
        items.push(MemberRecord {
            sender,
            sessions: u32::try_from(sessions).unwrap_or(u32::MAX),
            since: Timestamp::from_millis(row.try_get(3)?),
            read_seq: parse_seq(row.try_get(4)?)?,
        });
    }
    Ok(Some(MembersPage { as_of_seq, items }))
}

/// Reads a room's retention and first seq from its row, the same on either backend.
pub(crate) fn read_room<'r, R>(row: &'r R) -> Result<(Retention, Seq), StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let retention = read_retention(row, "retention_max_age")?;
    let erased_through = parse_seq(row.try_get("erased_through")?)?;
    let first_seq = erased_through
        .next()
        .ok_or_else(|| StoreError::Corrupt("erased_through".to_owned()))?;
    Ok((retention, first_seq))
}

/// Reads a retention from a row: its age in seconds from `age_column`, and
/// `retention_max_events`.
pub(crate) fn read_retention<'r, R>(
    row: &'r R,
    age_column: &'static str,
) -> Result<Retention, StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let limit = |column| -> Result<Option<u64>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .and_then(|raw| u64::try_from(raw).ok()))
    };
    Ok(Retention {
        max_age_seconds: limit(age_column)?,
        max_events: limit("retention_max_events")?,
    })
}

/// Reads what messages that change added to an event's row, the same on either backend: the
/// latest text (none once erased), the target, emoji and reply, and the edit and delete marks.
pub(crate) fn read_changes<'r, R>(row: &'r R, event: &mut Event) -> Result<(), StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let seq = |column| -> Result<Option<Seq>, StoreError> {
        row.try_get::<Option<i64>, _>(column)?
            .map(parse_seq)
            .transpose()
    };
    event.message = row
        .try_get::<Option<String>, _>("message")?
        .unwrap_or_default();
    event.target_seq = seq("target_seq")?;
    event.reply_to = seq("reply_to")?;
    event.emoji = row.try_get("emoji")?;
    event.edited_at = row
        .try_get::<Option<i64>, _>("edited_at")?
        .map(Timestamp::from_millis);
    event.deleted = row.try_get("deleted")?;
    Ok(())
}

pub(crate) fn parse_seq(raw: i64) -> Result<Seq, StoreError> {
    Seq::new(raw).ok_or_else(|| StoreError::Corrupt(format!("seq {raw}")))
}
