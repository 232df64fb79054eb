//! Rows read back as records, and lists bound into a query.

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use crate::domain::{Event, RoomId, Timestamp};
use crate::store::{RoomRecord, StoreError, parse_seq, read_event, read_room};

pub(super) fn room_from_row(row: &SqliteRow) -> Result<RoomRecord, StoreError> {
    let (retention, first_seq, visibility) = read_room(row)?;
    Ok(RoomRecord {
        room_id: parse_room_id(row.try_get("room_id")?)?,
        name: row.try_get("name")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        last_seq: parse_seq(row.try_get("last_seq")?)?,
        position: row.try_get("position")?,
        retention,
        first_seq,
        visibility,
    })
}

pub(super) fn event_from_row(row: &SqliteRow) -> Result<Event, StoreError> {
    let message_id: &str = row.try_get("message_id")?;
    let message_id = Uuid::try_parse(message_id)
        .map_err(|_| StoreError::Corrupt(format!("message id {message_id:?}")))?;
    read_event(row, parse_room_id(row.try_get("room_id")?)?, message_id)
}

/// Completes a query ending in `IN ` with a list of values (an empty list matches nothing).
pub(super) fn in_list<'q>(
    query: &'q mut QueryBuilder<Sqlite>,
    values: impl Iterator<Item = String>,
    rest: &str,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments> {
    query.push("(");
    let mut listed = query.separated(", ");
    listed.push("NULL");
    for value in values {
        listed.push_bind(value);
    }
    query.push(")").push(rest);
    query.build()
}

pub(super) fn in_rooms<'q>(
    query: &'q mut QueryBuilder<Sqlite>,
    rooms: &[RoomId],
    rest: &str,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments> {
    in_list(query, rooms.iter().map(RoomId::to_string), rest)
}

pub(super) fn parse_room_id(raw: &str) -> Result<RoomId, StoreError> {
    RoomId::parse(raw).map_err(|_| StoreError::Corrupt(format!("room id {raw:?}")))
}
