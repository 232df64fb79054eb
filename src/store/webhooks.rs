//! Webhooks as stored: what each one is, its delivery position in each room, and which
//! instance delivers it (a lease with an expiry, so one that died is replaced). Events are
//! not copied anywhere: a webhook's outbox is the events table after its positions.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{History, StoreError, parse_seq};
use crate::domain::{EventFilter, EventKind, InstanceId, RoomId, Seq, Timestamp, WebhookId};

/// Webhooks and the events they send, on a small pool of their own: however many webhooks
/// are behind, and however slowly their receivers answer, they never take a connection that
/// chat's reads are waiting for.
#[derive(Clone)]
pub struct Webhooks {
    pub store: Arc<dyn WebhookStore>,
    pub history: Arc<dyn History>,
}

/// Connections in the webhooks' pool.
pub(crate) const WEBHOOK_CONNECTIONS: u32 = 2;

/// A webhook as stored; its secret sealed (only the webhook key opens it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub webhook_id: WebhookId,
    pub url: String,
    pub filter: EventFilter,
    pub sealed_secret: Vec<u8>,
    pub created_at: Timestamp,
}

/// Where a webhook's delivery stands in one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPosition {
    pub room_id: RoomId,
    /// The last event sent (or passed over for its type).
    pub delivered_seq: Seq,
    /// The room's newest event (a deleted room's last, while its events are still stored).
    pub last_seq: Seq,
    /// Why the next one has not gone yet.
    pub last_error: Option<String>,
    /// Since when it keeps failing.
    pub failing_since: Option<Timestamp>,
}

/// That a webhook's delivery in a room got through `seq` (every event to it went, or was
/// passed over for its type), so the room is not failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub webhook_id: WebhookId,
    pub room_id: RoomId,
    pub seq: Seq,
}

/// Where delivery positions are stored as a webhook advances: the writer, which stores them
/// with its next batch. Stored apart, each took storage's write lock beside the writer's, and
/// SQLite has one for the whole file: each waited in SQLite's busy handler (1, 2, 5, 10... ms)
/// and made the writer wait the same way.
#[async_trait]
pub trait Positions: Send + Sync + 'static {
    async fn delivered(&self, position: Delivered) -> Result<(), StoreError>;
}

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores a webhook and starts it at each of its rooms' newest event: it is sent what
    /// comes next, and every event of rooms created later.
    async fn create_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError>;

    /// Every webhook, oldest first.
    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError>;

    async fn webhook(&self, id: WebhookId) -> Result<Option<WebhookRecord>, StoreError>;

    /// Its position in each room it has one in, by room.
    async fn positions(&self, id: WebhookId) -> Result<Vec<RoomPosition>, StoreError>;

    /// False when there was no such webhook.
    async fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError>;

    /// Takes or renews the webhook's lease for `instance`; false while another holds it.
    async fn claim(
        &self,
        id: WebhookId,
        instance: InstanceId,
        lease: Duration,
    ) -> Result<bool, StoreError>;

    /// Gives the lease up, so another instance need not wait for it to run out.
    async fn release(&self, id: WebhookId, instance: InstanceId) -> Result<(), StoreError>;

    /// Its rooms with events after its position there: `last_seq` and `last_error` say how
    /// far and why.
    async fn behind(&self, id: WebhookId) -> Result<Vec<RoomPosition>, StoreError>;

    /// The event after `delivered_seq` failed with `error`, at `at`.
    async fn failed(
        &self,
        position: &RoomPosition,
        id: WebhookId,
        at: Timestamp,
    ) -> Result<(), StoreError>;
}

/// A filter's two lists as stored: JSON arrays, or NULL for "every".
pub(crate) fn filter_columns(filter: &EventFilter) -> (Option<String>, Option<String>) {
    let rooms = filter.rooms.as_ref().map(|rooms| {
        serde_json::Value::from(rooms.iter().map(RoomId::to_string).collect::<Vec<_>>()).to_string()
    });
    let types = filter.types.as_ref().map(|types| {
        serde_json::Value::from(types.iter().map(|kind| kind.as_str()).collect::<Vec<_>>())
            .to_string()
    });
    (rooms, types)
}

/// The filter stored as [`filter_columns`] writes it.
pub(crate) fn read_filter(
    rooms: Option<&str>,
    types: Option<&str>,
) -> Result<EventFilter, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("webhook {what}"));
    let list =
        |raw: &str, what: &str| serde_json::from_str::<Vec<String>>(raw).map_err(|_| corrupt(what));
    let rooms = rooms
        .map(|raw| {
            list(raw, "rooms")?
                .iter()
                .map(|id| RoomId::parse(id).map_err(|_| corrupt("rooms")))
                .collect()
        })
        .transpose()?;
    let types = types
        .map(|raw| {
            list(raw, "types")?
                .iter()
                .map(|name| EventKind::parse(name).ok_or_else(|| corrupt("types")))
                .collect()
        })
        .transpose()?;
    Ok(EventFilter { rooms, types })
}

/// A position as read: seqs, then the failure columns.
pub(crate) fn read_position(
    room_id: RoomId,
    (delivered, last): (i64, i64),
    last_error: Option<String>,
    failing_since: Option<i64>,
) -> Result<RoomPosition, StoreError> {
    Ok(RoomPosition {
        room_id,
        delivered_seq: parse_seq(delivered)?,
        last_seq: parse_seq(last)?,
        last_error,
        failing_since: failing_since.map(Timestamp::from_millis),
    })
}
