//! A room's roles, kicks, bans and mutes (identity mode). Each change goes through the writer
//! as a `MODERATION` event: it is checked against the room's rules under the room's lock and
//! stored with the change it makes, so members see it in order, history keeps it, and every
//! instance applies it as it delivers it. Reads are lists of what is in force.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Seen, seen};
use super::rooms::room_id;
use crate::domain::{Action, Moderation, NewEvent, Reason, Role, RoomId, Sender, Timestamp};
use crate::error::{ApiError, Problem};
use crate::identity::Caller;
use crate::state::AppState;
use crate::store::{RoleRecord, SanctionKind, SanctionRecord};
use crate::writer::{AppendError, Appended};

/// A role held in a room.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleItem {
    pub name: String,
    pub role: Role,
    pub granted_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub granted_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    pub items: Vec<RoleItem>,
}

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

/// The role to grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRole {
    pub role: Role,
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

impl From<RoleRecord> for RoleItem {
    fn from(record: RoleRecord) -> Self {
        Self {
            name: record.name,
            role: record.role,
            granted_by: record.granted_by,
            granted_at: record.granted_at,
        }
    }
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

/// The room and name a path names.
fn room_and_name(path: &(String, String)) -> Result<(RoomId, Sender), ApiError> {
    let room_id = room_id(&path.0)?;
    let name = Sender::parse(&path.1)
        .map_err(|error| ApiError::InvalidRequest(format!("name: {error}")))?;
    Ok((room_id, name))
}

/// A body that may be absent (then the defaults), else JSON.
fn optional_body<T: DeserializeOwned + Default>(
    request: &HttpRequest,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::InvalidRequest(format!("invalid JSON body: {error}")))
}

/// A ban's or mute's end: in the future.
fn until(until: Option<Timestamp>) -> Result<Option<Timestamp>, ApiError> {
    match until {
        Some(until) if until <= Timestamp::now() => Err(ApiError::InvalidRequest(
            "until must be in the future".to_owned(),
        )),
        until => Ok(until),
    }
}

/// Stores a MODERATION event by the caller in a room the caller may see. A `NO_CHANGE`
/// refusal is no failure: the room is already as asked.
async fn moderate(
    state: &AppState,
    caller: &Caller,
    room_id: RoomId,
    build: impl FnOnce(&Sender) -> Moderation,
) -> Result<Seen, ApiError> {
    let Some(by) = caller.name() else {
        return Err(ApiError::Forbidden(
            "room roles and moderation need identity mode (CHAT_JWT_SECRET)".to_owned(),
        ));
    };
    let seen = seen(state, caller, room_id).await?;
    let moderation = build(by);
    let event = NewEvent::moderation(room_id, by.clone(), moderation, caller.authority());
    let slot = state.writer.reserve().await?;
    match slot.append(event).await {
        Ok(Ok(Appended::Stored(_) | Appended::Duplicate(_))) => Ok(seen),
        Ok(Err(AppendError::NoChange(_))) => Ok(seen),
        Ok(Err(refused)) => Err(refused.into()),
        Err(_) => Err(ApiError::Unavailable),
    }
}

const NEEDS: &str = "Identity mode: the caller may not (see the rules of who may do what)";

/// A room's roles.
#[utoipa::path(get, path = "/api/rooms/{roomId}/roles", tag = "moderation",
    params(("roomId" = String, Path, format = Uuid)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who holds which role, owners first", body = RoleList),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_roles(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let room_id = room_id(&path)?;
    seen(&state, &caller, room_id).await?;
    let items = state.store.roles(room_id).await?;
    let items = items.into_iter().map(RoleItem::from).collect();
    Ok(HttpResponse::Ok().json(RoleList { items }))
}

/// Grant a role: owners any, moderators `member` only, `admin`s anything.
#[utoipa::path(put, path = "/api/rooms/{roomId}/roles/{name}", tag = "moderation",
    request_body = GrantRole,
    params(("roomId" = String, Path, format = Uuid), ("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The role as held now", body = RoleItem),
        (status = 400, description = "Bad id, name or role", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = NEEDS, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would leave the room without an owner", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn grant_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<GrantRole>,
) -> Result<HttpResponse, ApiError> {
    let (room_id, name) = room_and_name(&path)?;
    let role = body.role;
    moderate(&state, &caller, room_id, |by| Moderation {
        role: Some(role),
        ..Moderation::new(Action::Grant, &name, by)
    })
    .await?;
    let held = state.store.roles(room_id).await?;
    let item = held
        .into_iter()
        .find(|record| record.name == name.as_str())
        .map(RoleItem::from)
        .ok_or(ApiError::RoomNotFound(room_id))?;
    Ok(HttpResponse::Ok().json(item))
}

/// Revoke a role; in a private room its holder's sessions are removed from it.
#[utoipa::path(delete, path = "/api/rooms/{roomId}/roles/{name}", tag = "moderation",
    params(("roomId" = String, Path, format = Uuid), ("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked (or held none)"),
        (status = 400, description = "Bad id or name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = NEEDS, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would leave the room without an owner", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (room_id, name) = room_and_name(&path)?;
    moderate(&state, &caller, room_id, |by| {
        Moderation::new(Action::Revoke, &name, by)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
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
    let (room_id, name) = room_and_name(&path)?;
    moderate(&state, &caller, room_id, |by| {
        Moderation::new(Action::Kick, &name, by)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
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
    let (room_id, name) = room_and_name(&path)?;
    moderate(&state, &caller, room_id, |by| {
        Moderation::new(Action::Unban, &name, by)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
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
    let (room_id, name) = room_and_name(&path)?;
    moderate(&state, &caller, room_id, |by| {
        Moderation::new(Action::Unmute, &name, by)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
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
