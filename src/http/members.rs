//! `/api/rooms/{roomId}/members`: who is in a room now, on every instance, one item per
//! sender, with the seq the list reflects.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::seen;
use super::rooms::{room_id, valid_limit};
use crate::domain::{Seq, Timestamp};
use crate::error::{ApiError, Problem};
use crate::identity::Caller;
use crate::state::AppState;
use crate::store::{MemberCursor, MemberRecord};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    #[schema(example = "alice")]
    pub sender: String,
    /// How many of this sender's sessions are in the room (on every instance).
    #[schema(minimum = 1)]
    pub sessions: u32,
    /// When the first of them entered: its `ENTER` event's `sentAt`.
    #[schema(value_type = String, format = DateTime, example = "2026-11-21T09:30:00.123Z")]
    pub since: Timestamp,
    /// The highest seq this sender has read in the room (`READ`); 0 when none.
    #[schema(value_type = i64, minimum = 0)]
    pub read_seq: Seq,
}

impl From<MemberRecord> for Member {
    fn from(record: MemberRecord) -> Self {
        Self {
            sender: record.sender,
            sessions: record.sessions,
            since: record.since,
            read_seq: record.read_seq,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberPage {
    /// Ordered by `since`, then `sender`. `memberCount` is the sum of their `sessions`.
    pub items: Vec<Member>,
    /// The seq of the newest event this list reflects: apply the `ENTER` and `LEAVE` events
    /// with a greater `seq` to it and it stays exact.
    #[schema(value_type = i64, minimum = 0)]
    pub as_of_seq: Seq,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListMembers {
    /// Members per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page; opaque. Absent or empty: the first page.
    pub cursor: Option<String>,
}

/// An opaque cursor: the last item's `since` (epoch milliseconds) and its sender in hex, so
/// any name survives the query string.
fn cursor_after(member: &MemberRecord) -> String {
    let hex: String = member
        .sender
        .bytes()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{}-{hex}", member.since.millis())
}

fn parse_cursor(raw: &str) -> Result<MemberCursor, ApiError> {
    let not_ours =
        || ApiError::InvalidRequest(format!("cursor {raw:?} was not issued by this service"));
    let (since, hex) = raw.split_once('-').ok_or_else(not_ours)?;
    let since = since.parse::<i64>().map_err(|_| not_ours())?;
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.is_ascii() {
        return Err(not_ours());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| not_ours())?;
    let sender = String::from_utf8(bytes).map_err(|_| not_ours())?;
    Ok(MemberCursor {
        since: Timestamp::from_millis(since),
        sender,
    })
}

/// Who is in a room now, on every instance: one item per sender.
#[utoipa::path(get, path = "/api/rooms/{roomId}/members", tag = "rooms",
    params(("roomId" = String, Path, format = Uuid), ListMembers),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "A page of the room's members", body = MemberPage),
        (status = 400, description = "Not a UUID, bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_members(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<ListMembers>,
) -> Result<HttpResponse, ApiError> {
    let room_id = room_id(&path)?;
    if caller.viewer().is_some() {
        seen(&state, &caller, room_id).await?;
    }
    let limit = valid_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .filter(|cursor| !cursor.is_empty())
        .map(parse_cursor)
        .transpose()?;
    let page = state
        .store
        .members(room_id, after.as_ref(), limit + 1)
        .await?
        .ok_or(ApiError::RoomNotFound(room_id))?;
    let mut records = page.items;
    let next_cursor = match records.len() > limit as usize {
        true => {
            records.truncate(limit as usize);
            records.last().map(cursor_after)
        }
        false => None,
    };
    Ok(HttpResponse::Ok().json(MemberPage {
        items: records.into_iter().map(Member::from).collect(),
        as_of_seq: page.as_of_seq,
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_the_item_it_was_made_from() {
        for sender in ["alice", "김민수 🙂", "a-b-c", "x"] {
            let record = MemberRecord {
                sender: sender.into(),
                sessions: 1,
                since: Timestamp::from_millis(1_795_253_400_123),
                read_seq: Seq::ZERO,
            };
            let cursor = parse_cursor(&cursor_after(&record)).unwrap();
            assert_eq!(
                (cursor.since, cursor.sender.as_str()),
                (record.since, sender)
            );
        }
        for bad in [
            "", "-", "12", "12-", "x-61", "12-6", "12-zz", "12-ff", "12-é1",
        ] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
