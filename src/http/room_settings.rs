//! `PATCH /api/rooms/{roomId}`: a room's settings (its retention, for now).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::access::seen;
use super::rooms::{Room, room_id, rooms};
use crate::domain::Retention;
use crate::error::{ApiError, Problem};
use crate::identity::Caller;
use crate::state::AppState;

/// A change to a room: only `retention` so far.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    /// The room's own retention: `{"maxAgeSeconds": 86400}`, `{"maxEvents": 10000}`, both,
    /// or null (the server's default, if any; else all is kept).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Retention>)]
    pub retention: Option<Option<Retention>>,
}

/// A field that is present, null or not (absent stays None).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Change a room: its retention.
#[utoipa::path(patch, path = "/api/rooms/{roomId}", tag = "rooms", request_body = UpdateRoom,
    params(("roomId" = String, Path, format = Uuid)),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The room as changed", body = Room),
        (status = 400, description = "Bad id, JSON or limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Identity mode: neither the room's owner nor an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_room(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<UpdateRoom>,
) -> Result<HttpResponse, ApiError> {
    let room_id = room_id(&path)?;
    let retention = body
        .retention
        .map(|retention| retention.unwrap_or_default().validated())
        .transpose()
        .map_err(|error| ApiError::InvalidRequest(error.to_string()))?;
    let seen = seen(&state, &caller, room_id).await?;
    if !caller.may_manage(seen.place.role) {
        return Err(ApiError::Forbidden(
            "only the room's owners and admins may change its retention".to_owned(),
        ));
    }
    let record = match retention {
        Some(retention) => state.writer.set_retention(room_id, retention).await?,
        None => Some(seen.record),
    };
    let record = record.ok_or(ApiError::RoomNotFound(room_id))?;
    let room = rooms(&state, &caller, vec![record]).await?.pop();
    Ok(HttpResponse::Ok().json(room))
}
