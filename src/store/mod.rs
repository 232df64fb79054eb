//! Storage behind one trait, so the backend is chosen by `DATABASE_URL`'s scheme and nothing
//! above this module sees SQL. Every write that must be ordered with fan-out goes through the
//! sequencer (`hub::sequencer`), which batches appends into one transaction.

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{Event, NewEvent, RoomId, RoomName, Timestamp};

pub use sqlite::SqliteStore;

/// A room as stored. `position` is its place in creation order (the list cursor's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub room_id: RoomId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_seq: i64,
    pub position: i64,
}

/// Which of a room's events to read; results always come back in ascending `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRange {
    /// The first `limit` events with `after < seq < before`.
    Forward { after: i64, before: i64, limit: u32 },
    /// The last `limit` events with `seq < before`.
    Backward { before: i64, limit: u32 },
}

/// Why a single append in a batch was refused while the rest of the batch went through:
/// this room does not exist (any more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomGone(pub RoomId);

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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn create_room(&self, name: &RoomName) -> Result<RoomRecord, StoreError>;

    async fn room(&self, room_id: RoomId) -> Result<Option<RoomRecord>, StoreError>;

    /// Up to `limit` rooms created before `before` (a position), newest first.
    async fn rooms(&self, before: Option<i64>, limit: u32) -> Result<Vec<RoomRecord>, StoreError>;

    /// Deletes a room and its events; false when there was no such room.
    async fn delete_room(&self, room_id: RoomId) -> Result<bool, StoreError>;

    /// Stores a batch in one transaction, giving each event its room's next `seq`.
    /// One result per input, in input order.
    async fn append(
        &self,
        batch: Vec<NewEvent>,
    ) -> Result<Vec<Result<Event, RoomGone>>, StoreError>;

    async fn events(&self, room_id: RoomId, range: EventRange) -> Result<Vec<Event>, StoreError>;

    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Waits for open connections to finish and closes them.
    async fn close(&self);
}

/// Opens the backend named by the URL's scheme and brings its schema up to date.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStore::connect(url, max_connections).await?));
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
