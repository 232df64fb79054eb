//! Which rooms a caller may see: a private room exists only for those with a role in it (and
//! `admin`s); everyone else gets exactly what a room that never existed gets, from one query
//! either way.

use crate::domain::RoomId;
use crate::error::ApiError;
use crate::identity::Caller;
use crate::state::AppState;
use crate::store::{Admission, RoomRecord};

/// A room the caller may see, and the caller's place in it.
pub struct Seen {
    pub record: RoomRecord,
    pub place: Admission,
}

/// The room, as the caller may see it; `ROOM_NOT_FOUND` when it does not exist or is hidden
/// from the caller.
pub async fn seen(state: &AppState, caller: &Caller, room_id: RoomId) -> Result<Seen, ApiError> {
    let found = match caller.name() {
        None => state
            .store
            .room(room_id)
            .await?
            .map(|record| (record, Admission::default())),
        Some(name) => state.store.admission(room_id, name.as_str()).await?,
    };
    let (record, place) = found.ok_or(ApiError::RoomNotFound(room_id))?;
    let hidden = record.visibility == crate::domain::Visibility::Private
        && place.role.is_none()
        && caller.viewer().is_some();
    match hidden {
        true => Err(ApiError::RoomNotFound(room_id)),
        false => Ok(Seen { record, place }),
    }
}
