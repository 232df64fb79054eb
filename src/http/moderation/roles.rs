//! A room's roles: who holds which, granted and revoked under the room's rules.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{NEEDS, moderate, room_and_name, undo};
use crate::domain::{Action, Moderation, Role, Timestamp};
use crate::error::{ApiError, Problem};
use crate::http::access::seen;
use crate::http::rooms::room_id;
use crate::identity::Caller;
use crate::state::AppState;
use crate::store::RoleRecord;

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

/// The role to grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRole {
    pub role: Role,
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
    undo(&state, &caller, &path, Action::Revoke).await
}
