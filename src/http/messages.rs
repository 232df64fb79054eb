//! `/api/rooms/{roomId}/messages`: a room's stored events, in ascending seq.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::seen;
use super::rooms::room_id;
use crate::domain::{Event, Seq};
use crate::error::{ApiError, Problem};
use crate::identity::Caller;
use crate::state::AppState;
use crate::store::EventRange;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only events with a greater seq; the page starts right after it.
    #[param(minimum = 0)]
    pub after_seq: Option<i64>,
    /// Only events with a smaller seq; without `afterSeq` the page ends right before it.
    #[param(minimum = 1)]
    pub before_seq: Option<i64>,
    /// Events per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Only the TALKs that answer the TALK at this seq.
    #[param(minimum = 1)]
    pub reply_to: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub items: Vec<Event>,
    /// The room's oldest seq still stored: what lies below was erased by its retention, and a
    /// page asked for below it starts here.
    #[schema(value_type = i64, minimum = 1)]
    pub first_seq: Seq,
}

impl HistoryQuery {
    /// With `afterSeq`: the first `limit` events after it (and before `beforeSeq`, if given).
    /// Otherwise: the last `limit` events before `beforeSeq`, or the latest ones.
    fn range(&self) -> Result<EventRange, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::InvalidRequest(format!(
                "limit must be 1 to {MAX_LIMIT}"
            )));
        }
        let after = self
            .after_seq
            .map(|raw| Seq::new(raw).ok_or_else(|| invalid("afterSeq must be 0 or more")))
            .transpose()?;
        let before = match self.before_seq {
            None => Seq::MAX,
            Some(raw) => Seq::new(raw)
                .filter(|before| *before > Seq::ZERO)
                .ok_or_else(|| invalid("beforeSeq must be 1 or more"))?,
        };
        Ok(match after {
            Some(after) => EventRange::Forward {
                after,
                before,
                limit,
            },
            None => EventRange::Backward { before, limit },
        })
    }
}

impl HistoryQuery {
    fn replies_to(&self) -> Result<Option<Seq>, ApiError> {
        self.reply_to
            .map(|raw| {
                Seq::new(raw)
                    .filter(|seq| *seq > Seq::ZERO)
                    .ok_or_else(|| invalid("replyTo must be 1 or more"))
            })
            .transpose()
    }
}

fn invalid(detail: &str) -> ApiError {
    ApiError::InvalidRequest(detail.to_owned())
}

/// A room's history.
#[utoipa::path(get, path = "/api/rooms/{roomId}/messages", tag = "rooms",
    params(("roomId" = String, Path, format = Uuid), HistoryQuery),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "Events in ascending seq", body = EventPage),
        (status = 400, description = "Bad id or query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Identity mode: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let room_id = room_id(&path)?;
    let range = query.range()?;
    let replies_to = query.replies_to()?;
    let room = seen(&state, &caller, room_id).await?.record;
    let items = match replies_to {
        Some(reply_to) => state.store.replies(room_id, reply_to, range).await?,
        None => state.store.events(room_id, range).await?,
    };
    Ok(HttpResponse::Ok().json(EventPage {
        items,
        first_seq: room.first_seq,
    }))
}
