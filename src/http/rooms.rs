//! `/api/rooms`: create, list (newest first, cursor pages), get and delete rooms.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::seen;
use crate::domain::{NewRoom, Retention, Role, RoomId, RoomName, Seq, Timestamp, Visibility};
use crate::error::{ApiError, Problem};
use crate::identity::Caller;
use crate::state::AppState;
use crate::store::RoomRecord;

const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateRoom {
    /// Trimmed; 1 to 100 characters.
    #[schema(example = "general", min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// `public` (the default) or, identity mode only, `private`: seen only by those with a
    /// role in it (and `admin`s). The creator becomes its owner.
    #[serde(default)]
    pub visibility: Visibility,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub room_id: RoomId,
    #[schema(example = "general")]
    pub name: String,
    #[schema(value_type = String, format = DateTime, example = "2026-11-21T09:30:00.123Z")]
    pub created_at: Timestamp,
    /// Sessions in the room right now, on every instance.
    pub member_count: usize,
    /// The seq of the room's newest event; 0 when it has none.
    #[schema(value_type = i64)]
    pub last_seq: Seq,
    /// The oldest seq still stored: older events were erased by retention (`lastSeq + 1` when
    /// none is stored).
    #[schema(value_type = i64, minimum = 1)]
    pub first_seq: Seq,
    /// The room's own retention, which replaces the server's default; null: the default applies
    /// (if any; else all is kept).
    #[schema(required = true)]
    pub retention: Option<Retention>,
    pub visibility: Visibility,
    /// Identity mode: the caller's role in the room; null when none.
    #[schema(required = true)]
    pub role: Option<Role>,
    /// Identity mode: TALKs after the caller's read marker, neither deleted nor the caller's
    /// own. Absent where the caller has no read marker in the room.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub unread_count: Option<u64>,
}

impl Room {
    pub fn from_record(record: RoomRecord, member_count: usize) -> Self {
        Self {
            member_count,
            room_id: record.room_id,
            name: record.name,
            created_at: record.created_at,
            last_seq: record.last_seq,
            first_seq: record.first_seq,
            retention: (!record.retention.keeps_all()).then_some(record.retention),
            visibility: record.visibility,
            role: None,
            unread_count: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomPage {
    pub items: Vec<Room>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListRooms {
    /// Rooms per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page; opaque. Absent or empty: the first page.
    #[param(pattern = r"^([1-9][0-9]{0,17})?$")]
    pub cursor: Option<String>,
}

/// Parses a `{roomId}` path segment.
pub fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    RoomId::parse(raw)
        .map_err(|_| ApiError::InvalidRequest(format!("room id {raw:?} is not a UUID")))
}

/// A page size: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn valid_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    Ok(limit)
}

fn parse_cursor(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|position| *position > 0)
        .ok_or_else(|| {
            ApiError::InvalidRequest(format!("cursor {raw:?} was not issued by this service"))
        })
}

/// Create a room.
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", request_body = CreateRoom,
    security(("bearer" = []), ()),
    responses(
        (status = 201, description = "Created", body = Room,
            headers(("Location" = String, description = "/api/rooms/{roomId}"))),
        (status = 400, description = "Bad JSON, name or visibility (private without identity)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_room(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateRoom>,
) -> Result<HttpResponse, ApiError> {
    let name =
        RoomName::parse(&body.name).map_err(|error| ApiError::InvalidRequest(error.to_string()))?;
    let owner = caller.name().cloned();
    if body.visibility == Visibility::Private && owner.is_none() {
        return Err(ApiError::InvalidRequest(
            "private rooms need identity mode (CHAT_JWT_SECRET)".to_owned(),
        ));
    }
    let new = NewRoom {
        name,
        visibility: body.visibility,
        owner,
    };
    let record = state.writer.create_room(new).await?;
    let owned = caller.name().map(|_| Role::Owner);
    let room = Room {
        role: owned,
        ..Room::from_record(record, 0)
    };
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/rooms/{}", room.room_id)))
        .json(room))
}

/// List rooms, newest first.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", params(ListRooms),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "A page of rooms", body = RoomPage),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_rooms(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListRooms>,
) -> Result<HttpResponse, ApiError> {
    let limit = valid_limit(query.limit)?;
    let before = query
        .cursor
        .as_deref()
        .filter(|cursor| !cursor.is_empty())
        .map(parse_cursor)
        .transpose()?;
    let viewer = caller.viewer();
    let mut records = state.store.visible_rooms(before, limit + 1, viewer).await?;
    let next_cursor = if records.len() > limit as usize {
        records.truncate(limit as usize);
        records.last().map(|last| last.position.to_string())
    } else {
        None
    };
    let items = rooms(&state, &caller, records).await?;
    Ok(HttpResponse::Ok().json(RoomPage { items, next_cursor }))
}

/// Get one room.
#[utoipa::path(get, path = "/api/rooms/{roomId}", tag = "rooms",
    params(("roomId" = String, Path, format = Uuid)),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The room", body = Room),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_room(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let room_id = room_id(&path)?;
    let seen = seen(&state, &caller, room_id).await?;
    let room = rooms(&state, &caller, vec![seen.record]).await?.pop();
    Ok(HttpResponse::Ok().json(room))
}

/// Rooms as a caller sees them: with their member counts (one query) and, in identity mode,
/// the caller's unread counts and roles (two more).
pub(super) async fn rooms(
    state: &AppState,
    caller: &Caller,
    records: Vec<RoomRecord>,
) -> Result<Vec<Room>, ApiError> {
    let ids: Vec<RoomId> = records.iter().map(|record| record.room_id).collect();
    let members = state.store.member_counts(&ids).await?;
    let (unread, roles) = match caller.name() {
        Some(name) => (
            state.store.unread_counts(&ids, name.as_str()).await?,
            state.store.roles_in(&ids, name.as_str()).await?,
        ),
        None => Default::default(),
    };
    Ok(records
        .into_iter()
        .map(|record| {
            let room_id = record.room_id;
            let count = members.get(&room_id).copied().unwrap_or(0);
            Room {
                unread_count: unread.get(&room_id).copied(),
                role: roles.get(&room_id).copied(),
                ..Room::from_record(record, count)
            }
        })
        .collect())
}

/// Delete a room and its history; members inside get a `CLOSED` frame and are detached.
#[utoipa::path(delete, path = "/api/rooms/{roomId}", tag = "rooms",
    params(("roomId" = String, Path, format = Uuid)),
    security(("bearer" = []), ()),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Identity mode: neither the room's owner nor an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_room(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let room_id = room_id(&path)?;
    let seen = seen(&state, &caller, room_id).await?;
    if !caller.may_manage(seen.place.role) {
        return Err(ApiError::Forbidden(
            "only the room's owners and admins may delete it".to_owned(),
        ));
    }
    if state.writer.delete_room(room_id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::RoomNotFound(room_id))
    }
}
