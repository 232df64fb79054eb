//! Kicks, bans and mutes, and the lists of those in force.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{NEEDS, moderate, optional_body, room_and_name, undo, until};
use crate::domain::{Action, Moderation, Reason, RoomId, Sender, Timestamp};
use crate::error::{ApiError, Problem};
use crate::http::access::seen;
use crate::http::rooms::room_id;
use crate::identity::Caller;
use crate::state::AppState;
use crate::store::{SanctionKind, SanctionRecord};

/// A ban or a mute in force.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SanctionItem {
    pub name: String,
    /// When it ends by itself; null: when lifted.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub until: Option<Timestamp>,
    /// A ban's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
    pub by: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SanctionList {
    pub items: Vec<SanctionItem>,
}

/// A ban's end and reason, both optional (no body at all: until lifted, no reason).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// A mute's end, optional (no body at all: until lifted).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteRequest {
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
}

impl From<SanctionRecord> for SanctionItem {
    fn from(record: SanctionRecord) -> Self {
        Self {
            name: record.name,
            until: record.until,
            reason: record.reason,
            by: record.by,
            at: record.at,
        }
    }
}

/// Kick: that name's sessions leave the room now (they may come back to a public room).
#[utoipa::path(delete, path = "/api/rooms/{roomId}/members/{name}", tag = "moderation",
    params(("roomId" = String, Path, format = Uuid), ("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Kicked: its sessions get REMOVED within a second, on every instance"),
        (status = 400, description = "Bad id or name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = NEEDS, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn kick(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    undo(&state, &caller, &path, Action::Kick).await
}

/// Ban: kicked, and refused ENTER and SUBSCRIBE until `until` or until lifted.
#[utoipa::path(put, path = "/api/rooms/{roomId}/bans/{name}", tag = "moderation",
    request_body(content = Option<BanRequest>, description = "Optional"),
    params(("roomId" = String, Path, format = Uuid), ("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ban in force", body = SanctionItem),
        (status = 400, description = "Bad id, name, until (past) or reason", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = NEEDS, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not application/json", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ban(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    request: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (room_id, name) = room_and_name(&path)?;
    let asked: BanRequest = optional_body(&request, &body)?;
    let until = until(asked.until)?;
    let reason = asked
        .reason
        .map(|raw| Reason::parse(&raw).map(Reason::into_string))
        .transpose()
        .map_err(|error| ApiError::InvalidRequest(error.to_string()))?;
    moderate(&state, &caller, room_id, |by| Moderation {
        until,
        reason,
        ..Moderation::new(Action::Ban, &name, by)
    })
    .await?;
    in_force(&state, room_id, SanctionKind::Ban, &name).await
}

/// Lift a ban.
#[utoipa::path(delete, path = "/api/rooms/{roomId}/bans/{name}", tag = "moderation",
    params(("roomId" = String, Path, format = Uuid), ("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Lifted (or there was none)"),
        (status = 400, description = "Bad id or name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = NEEDS, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unban(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    undo(&state, &caller, &path, Action::Unban).await
}

/// Mute: stays and reads, but TALK, EDIT, REACT and TYPING get `ERROR MUTED`.
#[utoipa::path(put, path = "/api/rooms/{roomId}/mutes/{name}", tag = "moderation",
    request_body(content = Option<MuteRequest>, description = "Optional"),
    params(("roomId" = String, Path, format = Uuid), ("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The mute in force", body = SanctionItem),
        (status = 400, description = "Bad id, name or until (past)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = NEEDS, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not application/json", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mute(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    request: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (room_id, name) = room_and_name(&path)?;
    let asked: MuteRequest = optional_body(&request, &body)?;
    let until = until(asked.until)?;
    moderate(&state, &caller, room_id, |by| Moderation {
        until,
        ..Moderation::new(Action::Mute, &name, by)
    })
    .await?;
    in_force(&state, room_id, SanctionKind::Mute, &name).await
}

/// Lift a mute.
#[utoipa::path(delete, path = "/api/rooms/{roomId}/mutes/{name}", tag = "moderation",
    params(("roomId" = String, Path, format = Uuid), ("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Lifted (or there was none)"),
        (status = 400, description = "Bad id or name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = NEEDS, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unmute(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    undo(&state, &caller, &path, Action::Unmute).await
}

/// A room's bans in force.
#[utoipa::path(get, path = "/api/rooms/{roomId}/bans", tag = "moderation",
    params(("roomId" = String, Path, format = Uuid)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Bans in force, by name", body = SanctionList),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_bans(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list(&state, &caller, &path, SanctionKind::Ban).await
}

/// A room's mutes in force.
#[utoipa::path(get, path = "/api/rooms/{roomId}/mutes", tag = "moderation",
    params(("roomId" = String, Path, format = Uuid)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Mutes in force, by name", body = SanctionList),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_mutes(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list(&state, &caller, &path, SanctionKind::Mute).await
}

async fn list(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    kind: SanctionKind,
) -> Result<HttpResponse, ApiError> {
    let room_id = room_id(raw)?;
    seen(state, caller, room_id).await?;
    let items = state
        .store
        .sanctions(room_id, kind, Timestamp::now())
        .await?;
    let items = items.into_iter().map(SanctionItem::from).collect();
    Ok(HttpResponse::Ok().json(SanctionList { items }))
}

/// The ban or mute of `name` as it is in force now.
async fn in_force(
    state: &AppState,
    room_id: RoomId,
    kind: SanctionKind,
    name: &Sender,
) -> Result<HttpResponse, ApiError> {
    let items = state
        .store
        .sanctions(room_id, kind, Timestamp::now())
        .await?;
    let item = items
        .into_iter()
        .find(|record| record.name == name.as_str())
        .map(SanctionItem::from)
        .ok_or(ApiError::RoomNotFound(room_id))?;
    Ok(HttpResponse::Ok().json(item))
}
