//! `POST /api/rooms/{roomId}/messages`: a TALK published over REST, for bots and integrations.
//! It is the WebSocket's append, not a copy of it: the same event through the same writer,
//! deduplicated by `clientMsgId` against TALKs from either door, under the same room rules
//! (a private room is missing for outsiders; a banned or muted name may not publish).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::access::seen;
use super::rooms::room_id;
use crate::domain::{
    Authority, ClientMsgId, DomainError, Event, MessageText, NewEvent, RoomId, Sender, Seq,
    Timestamp,
};
use crate::error::{ApiError, Problem};
use crate::identity::Caller;
use crate::state::AppState;
use crate::writer::Appended;

/// A TALK to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Publish {
    /// Trimmed, 1 to 64 characters. In identity mode it may be left out (it is the identity's
    /// name); another name is refused with `403 SENDER_MISMATCH`.
    #[schema(example = "deploy-bot")]
    pub sender: Option<String>,
    /// 1 to 4,000 characters.
    #[schema(example = "v2.3.1 is live")]
    pub message: String,
    /// The client's own id: a second publish with it (by REST or WebSocket) stores nothing and
    /// answers `200` with the first, marked `"duplicate": true`.
    #[schema(max_length = 128)]
    pub client_msg_id: Option<String>,
    /// The seq of the TALK this one answers.
    #[schema(minimum = 1)]
    pub reply_to: Option<i64>,
}

/// A publish, checked: the TALK to append.
fn talk(room_id: RoomId, body: Publish, caller: &Caller) -> Result<NewEvent, ApiError> {
    let invalid = |error: DomainError| ApiError::InvalidRequest(error.to_string());
    let sender = match (body.sender, caller.name()) {
        (Some(raw), signed) => {
            let sender = Sender::parse(&raw).map_err(invalid)?;
            if let Some(name) = signed.filter(|name| **name != sender) {
                return Err(ApiError::SenderMismatch(name.as_str().to_owned()));
            }
            sender
        }
        (None, Some(name)) => name.clone(),
        (None, None) => {
            return Err(ApiError::InvalidRequest(
                "sender is required without identity".to_owned(),
            ));
        }
    };
    let message = MessageText::parse(&body.message).map_err(|error| match error {
        DomainError::TooLong { max, .. } => ApiError::MessageTooLong(max),
        other => invalid(other),
    })?;
    let client_msg_id = body
        .client_msg_id
        .map(|raw| ClientMsgId::parse(&raw))
        .transpose()
        .map_err(invalid)?;
    let reply_to = body
        .reply_to
        .map(|raw| Seq::new(raw).filter(|seq| *seq > Seq::ZERO))
        .map(|seq| seq.ok_or_else(|| ApiError::InvalidRequest("replyTo must be 1 or more".into())))
        .transpose()?;
    Ok(NewEvent::talk(room_id, sender, message)
        .reply(reply_to)
        .correlated(client_msg_id)
        .acting_as(caller.authority())
        .by_bot(caller.is_bot()))
}

/// Publish a TALK to a room, as a WebSocket TALK would.
#[utoipa::path(post, path = "/api/rooms/{roomId}/messages", tag = "rooms", request_body = Publish,
    params(("roomId" = String, Path, format = Uuid)),
    security(("bearer" = []), ()),
    responses(
        (status = 201, description = "Stored and sent to the room's members", body = Event),
        (status = 200, description = "A clientMsgId this sender used already: the first, with \"duplicate\": true", body = Event),
        (status = 400, description = "Bad id, JSON, sender, clientMsgId or replyTo (TARGET_NOT_FOUND: no such TALK), or MESSAGE_TOO_LONG", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Identity mode: SENDER_MISMATCH, or BANNED or MUTED in the room", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or a private one the caller has no role in)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage could not take it: nothing was stored, retry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn publish(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Publish>,
) -> Result<HttpResponse, ApiError> {
    let room_id = room_id(&path)?;
    let new = talk(room_id, body.into_inner(), &caller)?;
    let place = seen(&state, &caller, room_id).await?.place;
    // As on the WebSocket, where a session's standing is checked on each frame: a mute or ban
    // answered before this request applies to it.
    if caller.authority() == Authority::Signed {
        let now = Timestamp::now();
        if place.banned_at(now) {
            return Err(ApiError::Banned(room_id));
        }
        if place.muted_at(now) {
            return Err(ApiError::Muted(room_id));
        }
    }
    let slot = state.writer.reserve().await?;
    let appended = slot.append(new.clone()).await;
    match appended.map_err(|_| ApiError::Unavailable)? {
        Ok(Appended::Stored(stored)) => {
            let event = Event::stored(new, stored.seq, stored.message_id, stored.sent_at);
            let location = format!(
                "/api/rooms/{room_id}/messages?afterSeq={}&limit=1",
                event.seq.prev()
            );
            Ok(HttpResponse::Created()
                .insert_header((header::LOCATION, location))
                .json(event))
        }
        Ok(Appended::Duplicate(first)) => {
            let mut first = serde_json::to_value(&*first).map_err(|_| ApiError::Unavailable)?;
            first["duplicate"] = json!(true);
            Ok(HttpResponse::Ok().json(first))
        }
        Err(refused) => Err(refused.into()),
    }
}
