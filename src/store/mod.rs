//! Storage behind two traits, so the backend is chosen by `DATABASE_URL`'s scheme and nothing
//! above this module sees SQL. [`Store`] reads, on a pool shared by every request and session.
//! [`StoreWriter`] writes, on a connection of its own that only the hub's writer task holds, so
//! no read can make a write wait for a connection and writes never contend with each other.

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{Event, NewEvent, RoomId, RoomName, Seq, Timestamp};

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
    #[error("unsupported DATABASE_URL scheme in {0:?}: use sqlite://PATH")]
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

    /// Stores a batch in one transaction, giving each event its room's next `seq`. One result
    /// per input, in input order; an event the database refuses fails alone.
    async fn append(
        &mut self,
        batch: Vec<NewEvent>,
    ) -> Result<Vec<Result<Event, Refused>>, StoreError>;

    /// Deletes a room at once (false when there was no such room); its events are removed
    /// afterwards by [`StoreWriter::purge_step`], a bounded chunk at a time.
    async fn delete_room(&mut self, room_id: RoomId) -> Result<bool, StoreError>;

    /// Deletes up to `limit` events of deleted rooms; false when none were left.
    async fn purge_step(&mut self, limit: u32) -> Result<bool, StoreError>;

    /// A cheap round trip on this connection, for readiness.
    async fn ping(&mut self) -> Result<(), StoreError>;
}

/// A backend: its reading pool and its writer.
pub struct Storage {
    pub store: Arc<dyn Store>,
    pub writer: Box<dyn StoreWriter>,
}

/// Opens the backend named by the URL's scheme and brings its schema up to date.
pub async fn connect(url: &str, max_connections: u32) -> Result<Storage, StoreError> {
    if url.starts_with("sqlite:") {
        return sqlite::connect(url, max_connections).await;
    }
    Err(StoreError::UnsupportedUrl(redact(url)))
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

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_url_password_is_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://chat.db"), "sqlite://chat.db");
    }
}
