//! A room's roles, kicks, bans and mutes (identity mode). Each change goes through the writer
//! as a `MODERATION` event: it is checked against the room's rules under the room's lock and
//! stored with the change it makes, so members see it in order, history keeps it, and every
//! instance applies it as it delivers it. Reads are lists of what is in force.

mod roles;
mod sanctions;

pub use roles::{__path_grant_role, __path_list_roles, __path_revoke_role};
pub use roles::{grant_role, list_roles, revoke_role};
pub use sanctions::{
    __path_ban, __path_kick, __path_list_bans, __path_list_mutes, __path_mute, __path_unban,
    __path_unmute,
};
pub use sanctions::{ban, kick, list_bans, list_mutes, mute, unban, unmute};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;

use super::access::{Seen, seen};
use super::rooms::room_id;
use crate::domain::{Action, Moderation, NewEvent, RoomId, Sender, Timestamp};
use crate::error::ApiError;
use crate::identity::Caller;
use crate::state::AppState;
use crate::writer::{AppendError, Appended};

/// The room and name a path names.
pub(super) fn room_and_name(path: &(String, String)) -> Result<(RoomId, Sender), ApiError> {
    let room_id = room_id(&path.0)?;
    let name = Sender::parse(&path.1)
        .map_err(|error| ApiError::InvalidRequest(format!("name: {error}")))?;
    Ok((room_id, name))
}

/// A body that may be absent (then the defaults), else JSON.
pub(super) fn optional_body<T: DeserializeOwned + Default>(
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
pub(super) fn until(until: Option<Timestamp>) -> Result<Option<Timestamp>, ApiError> {
    match until {
        Some(until) if until <= Timestamp::now() => Err(ApiError::InvalidRequest(
            "until must be in the future".to_owned(),
        )),
        until => Ok(until),
    }
}

/// Stores a MODERATION event by the caller in a room the caller may see. A `NO_CHANGE`
/// refusal is no failure: the room is already as asked.
pub(super) async fn moderate(
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
    let event = NewEvent::moderation(room_id, by.clone(), moderation, caller.authority())
        .by_bot(caller.is_bot());
    let slot = state.writer.reserve().await?;
    match slot.append(event).await {
        Ok(Ok(Appended::Stored(_) | Appended::Duplicate(_))) => Ok(seen),
        Ok(Err(AppendError::NoChange(_))) => Ok(seen),
        Ok(Err(refused)) => Err(refused.into()),
        Err(_) => Err(ApiError::Unavailable),
    }
}

pub(super) const NEEDS: &str =
    "Identity mode: the caller may not (see the rules of who may do what)";

/// A kick, or a role, ban or mute taken away: `204` once stored (or when there was nothing
/// to take away).
pub(super) async fn undo(
    state: &AppState,
    caller: &Caller,
    path: &(String, String),
    action: Action,
) -> Result<HttpResponse, ApiError> {
    let (room_id, name) = room_and_name(path)?;
    moderate(state, caller, room_id, |by| {
        Moderation::new(action, &name, by)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
