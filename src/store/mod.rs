//! Storage behind two traits, so the backend is chosen by `DATABASE_URL`'s scheme and nothing
//! above this module sees SQL. [`Store`] reads, on a pool shared by every request and session.
//! [`StoreWriter`] writes, on a connection of its own that only the hub's writer task holds, so
//! no read can make a write wait for a connection and writes of one instance never contend
//! with each other.
//!
//! The database is the one authority on order: it gives each event its room's next `seq` in
//! the transaction that stores it, whichever instance's writer stores it. Presence lives here
//! too: a session's membership is stored with its ENTER and removed with its LEAVE, and each
//! instance heartbeats, so the members of one that died are known and get their LEAVEs.

mod postgres;
mod sqlite;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{Stream, TryStreamExt};
use uuid::Uuid;

use crate::domain::{
    Event, EventKind, InstanceId, NewEvent, RoomId, RoomName, Sender, Seq, SessionId, Timestamp,
};

/// A room as stored. `position` is its place in creation order (the list cursor's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub room_id: RoomId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_seq: Seq,
    pub position: i64,
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

/// Why one append of a batch was not stored while the rest of the batch went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The room does not exist (any more).
    RoomGone,
    /// The database refused this event (a constraint or trigger); the others were not affected.
    Rejected,
    /// A LEAVE of a session that is not a member (any more): its instance was taken for dead
    /// and its LEAVE stored already. No second LEAVE is stored.
    NotMember,
}

/// A storage failure. Its text is for logs only: it may hold SQL or paths.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported DATABASE_URL scheme in {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
}

/// Reads, on a pool of connections.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn room(&self, room_id: RoomId) -> Result<Option<RoomRecord>, StoreError>;

    /// Up to `limit` rooms created before `before` (a position), newest first.
    async fn rooms(&self, before: Option<i64>, limit: u32) -> Result<Vec<RoomRecord>, StoreError>;

    async fn events(&self, room_id: RoomId, range: EventRange) -> Result<Vec<Event>, StoreError>;

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

    /// The newest seq of each room; rooms that do not exist (any more) are left out.
    async fn last_seqs(&self, rooms: &[RoomId]) -> Result<HashMap<RoomId, Seq>, StoreError>;

    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Waits for open connections to finish and closes them.
    async fn close(&self);
}

/// Writes, on one connection of its own, used by one task at a time.
#[async_trait]
pub trait StoreWriter: Send + 'static {
    /// Creates a room stamped `now`, or later: never before the newest room, so the room list
    /// (newest position first) never shows `createdAt` increasing.
    async fn create_room(
        &mut self,
        name: &RoomName,
        now: Timestamp,
    ) -> Result<RoomRecord, StoreError>;

    /// Stores a batch in one transaction, giving each event its room's next `seq`, and the
    /// membership each ENTER or LEAVE changes. One result per input, in input order; an event
    /// the database refuses fails alone.
    async fn append(
        &mut self,
        batch: Vec<NewEvent>,
    ) -> Result<Vec<Result<Event, Refused>>, StoreError>;

    /// Deletes a room and its memberships at once, returning its last seq (None when there was
    /// no such room); its events are removed afterwards by [`StoreWriter::purge_step`], a
    /// bounded chunk at a time.
    async fn delete_room(&mut self, room_id: RoomId) -> Result<Option<Seq>, StoreError>;

    /// Deletes up to `limit` events of deleted rooms; false when none were left.
    async fn purge_step(&mut self, limit: u32) -> Result<bool, StoreError>;

    /// A cheap round trip on this connection, for readiness.
    async fn ping(&mut self) -> Result<(), StoreError>;

    /// Records this writer's instance as alive.
    async fn register(&mut self) -> Result<(), StoreError>;

    /// Renews this instance's heartbeat; false when it is not registered any more, because the
    /// others took it for dead and stored its members' LEAVEs.
    async fn heartbeat(&mut self) -> Result<bool, StoreError>;

    /// Other instances whose latest heartbeat is older than `silence`.
    async fn dead_instances(&mut self, silence: Duration) -> Result<Vec<InstanceId>, StoreError>;

    /// Forgets an instance, if it is still silent for `silence` (None: whatever its heartbeat),
    /// and stores a LEAVE for each of its members, in one transaction. Returns the stored
    /// LEAVEs; none when another instance reaped it first.
    async fn reap(
        &mut self,
        instance: InstanceId,
        silence: Option<Duration>,
    ) -> Result<Vec<Event>, StoreError>;
}

/// A backend: its reading pool and its writer.
pub struct Storage {
    pub store: Arc<dyn Store>,
    pub writer: Box<dyn StoreWriter>,
}

/// Opens the backend named by the URL's scheme and brings its schema up to date; the writer
/// writes for `instance`.
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
    Err(StoreError::UnsupportedUrl(redact(url)))
}

/// Whether the backend at this URL is shared by several instances (PostgreSQL), rather than
/// owned by one process (a SQLite file).
pub fn is_shared(url: &str) -> bool {
    !url.starts_with("sqlite:")
}

/// An event stamped for storage (its seq still to be given), with the membership it changes.
pub(crate) struct Pending {
    pub event: Event,
    pub session: Option<SessionId>,
}

/// Gives each new event its id and time; the store then gives it its seq.
pub(crate) fn stamp(batch: Vec<NewEvent>) -> Vec<Pending> {
    let sent_at = Timestamp::now();
    batch
        .into_iter()
        .map(|new| Pending {
            session: new.session,
            event: Event::stored(new, Seq::ZERO, Uuid::new_v4(), sent_at),
        })
        .collect()
}

/// How a backend stores one batch: all in one transaction, or, when that fails, each event
/// under a savepoint of its own (so an event the database refuses fails alone).
#[async_trait]
pub(crate) trait Batches {
    async fn together(&self, batch: &mut [Pending])
    -> Result<Vec<Result<(), Refused>>, StoreError>;

    async fn one_by_one(
        &self,
        batch: &mut [Pending],
    ) -> Result<Vec<Result<(), Refused>>, StoreError>;
}

/// [`StoreWriter::append`] on a backend: the fast path first, the slow one if it fails.
pub(crate) async fn append_batch(
    backend: &(impl Batches + Sync),
    batch: Vec<NewEvent>,
) -> Result<Vec<Result<Event, Refused>>, StoreError> {
    let mut batch = stamp(batch);
    let outcomes = match backend.together(&mut batch).await {
        Ok(outcomes) => outcomes,
        Err(error) => {
            tracing::warn!(%error, batch = batch.len(), "a batch failed; storing it event by event");
            backend.one_by_one(&mut batch).await?
        }
    };
    Ok(stored_events(batch, outcomes))
}

/// Each event of a batch as stored, or why it was not.
pub(crate) fn stored_events(
    batch: Vec<Pending>,
    outcomes: Vec<Result<(), Refused>>,
) -> Vec<Result<Event, Refused>> {
    batch
        .into_iter()
        .zip(outcomes)
        .map(|(pending, outcome)| outcome.map(|()| pending.event))
        .collect()
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

/// The LEAVEs of a dead instance's members (room, session, sender), in room and session order.
pub(crate) fn departures(mut gone: Vec<(RoomId, i64, String)>) -> Result<Vec<Pending>, StoreError> {
    gone.sort();
    let leaves = gone
        .into_iter()
        .map(|(room_id, _, sender)| {
            let sender = Sender::parse(&sender)
                .map_err(|_| StoreError::Corrupt(format!("member name {sender:?}")))?;
            Ok(NewEvent::departure(room_id, sender))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(stamp(leaves))
}

/// A membership as stored: (session, room) of the writer's instance.
pub(crate) type MemberKey = (i64, RoomId);

fn member_key(pending: &Pending) -> Option<MemberKey> {
    let session = pending.session?;
    Some((session_key(session), pending.event.room_id))
}

/// The stored memberships the batch's LEAVEs end: those of sessions that entered before it.
pub(crate) fn leaving_rows(batch: &[Pending]) -> Vec<MemberKey> {
    let mut entering = HashSet::new();
    let mut leaving = Vec::new();
    for pending in batch {
        let Some(key) = member_key(pending) else {
            continue;
        };
        match pending.event.kind {
            EventKind::Enter => {
                entering.insert(key);
            }
            EventKind::Leave if !entering.contains(&key) => leaving.push(key),
            EventKind::Leave | EventKind::Talk => {}
        }
    }
    leaving
}

/// Walks the batch in order from the memberships found stored (`present`): a LEAVE of a
/// session that is not a member by then is refused, so nobody ever gets a second LEAVE.
pub(crate) fn refuse_non_members(
    batch: &[Pending],
    present: &HashSet<MemberKey>,
) -> Vec<Result<(), Refused>> {
    let mut members = present.clone();
    batch
        .iter()
        .map(|pending| {
            let Some(key) = member_key(pending) else {
                return Ok(());
            };
            match pending.event.kind {
                EventKind::Enter => {
                    members.insert(key);
                    Ok(())
                }
                EventKind::Leave if members.remove(&key) => Ok(()),
                EventKind::Leave => Err(Refused::NotMember),
                EventKind::Talk => Ok(()),
            }
        })
        .collect()
}

/// The memberships the batch's stored ENTERs add, with their names: those not ended again by
/// a LEAVE later in the same batch.
pub(crate) fn entering_rows<'a>(
    batch: &'a [Pending],
    outcomes: &[Result<(), Refused>],
) -> Vec<(MemberKey, &'a str)> {
    let mut rows: Vec<(MemberKey, &str)> = Vec::new();
    for (pending, outcome) in batch.iter().zip(outcomes) {
        let (Some(key), Ok(())) = (member_key(pending), outcome) else {
            continue;
        };
        match pending.event.kind {
            EventKind::Enter => rows.push((key, pending.event.sender.as_str())),
            EventKind::Leave => rows.retain(|(entered, _)| *entered != key),
            EventKind::Talk => {}
        }
    }
    rows
}

/// A session id as stored: SQL has no unsigned 64-bit integer, and ids count up from 1.
pub(crate) fn session_key(session: SessionId) -> i64 {
    i64::try_from(session).unwrap_or(i64::MAX)
}

pub(crate) fn exhausted(room_id: RoomId) -> StoreError {
    StoreError::Corrupt(format!("room {room_id} has used every seq"))
}

/// Hides the password of a `scheme://user:password@host` URL.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}
