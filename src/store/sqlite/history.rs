//! A room's events as this backend reads them back, each page with its TALKs' reactions.

use async_trait::async_trait;

use super::SqliteStore;
use super::rows::event_from_row;
use crate::domain::{Event, RoomId, Seq};
use crate::store::{
    EventRange, History, PageLimit, REACTIONS_BETWEEN, StoreError, attach_reactions, reaction_row,
    read_page, talk_span,
};

/// The first events after `after` and before `before`, of the room or of a TALK's replies.
const FORWARD: &str =
    "SELECT * FROM events WHERE room_id = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?";
const FORWARD_REPLIES: &str = "SELECT * FROM events WHERE room_id = ? AND reply_to = ? AND seq > ? AND seq < ? \
     ORDER BY seq ASC LIMIT ?";
/// The last events before `before`, ascending.
const BACKWARD: &str = "SELECT * FROM (SELECT * FROM events WHERE room_id = ? AND seq < ? \
     ORDER BY seq DESC LIMIT ?) ORDER BY seq ASC";
const BACKWARD_REPLIES: &str = "SELECT * FROM (SELECT * FROM events WHERE room_id = ? AND reply_to = ? AND seq < ? \
     ORDER BY seq DESC LIMIT ?) ORDER BY seq ASC";

#[async_trait]
impl History for SqliteStore {
    async fn events(&self, room_id: RoomId, range: EventRange) -> Result<Vec<Event>, StoreError> {
        self.page(room_id, None, range).await
    }

    async fn replies(
        &self,
        room_id: RoomId,
        reply_to: Seq,
        range: EventRange,
    ) -> Result<Vec<Event>, StoreError> {
        self.page(room_id, Some(reply_to), range).await
    }

    async fn page_after(
        &self,
        room_id: RoomId,
        after: Seq,
        limit: PageLimit,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE room_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
        )
        .bind(room_id.to_string())
        .bind(after.get())
        .bind(limit.events)
        .fetch(&self.pool);
        let events = read_page(rows, limit, event_from_row).await?;
        self.with_reactions(room_id, events).await
    }
}

impl SqliteStore {
    /// A page of a room's events, or of the replies to one TALK, as `range` says.
    async fn page(
        &self,
        room_id: RoomId,
        replies_to: Option<Seq>,
        range: EventRange,
    ) -> Result<Vec<Event>, StoreError> {
        let sql = match (range, replies_to) {
            (EventRange::Forward { .. }, None) => FORWARD,
            (EventRange::Forward { .. }, Some(_)) => FORWARD_REPLIES,
            (EventRange::Backward { .. }, None) => BACKWARD,
            (EventRange::Backward { .. }, Some(_)) => BACKWARD_REPLIES,
        };
        let mut query = sqlx::query(sql).bind(room_id.to_string());
        if let Some(reply_to) = replies_to {
            query = query.bind(reply_to.get());
        }
        let query = match range {
            EventRange::Forward {
                after,
                before,
                limit,
            } => query.bind(after.get()).bind(before.get()).bind(limit),
            EventRange::Backward { before, limit } => query.bind(before.get()).bind(limit),
        };
        let rows = query.fetch_all(&self.pool).await?;
        let events = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
        self.with_reactions(room_id, events).await
    }

    /// The page with each TALK's reactions, read in one query.
    async fn with_reactions(
        &self,
        room_id: RoomId,
        mut events: Vec<Event>,
    ) -> Result<Vec<Event>, StoreError> {
        let Some((first, last)) = talk_span(&events) else {
            return Ok(events);
        };
        let rows = sqlx::query(REACTIONS_BETWEEN)
            .bind(room_id.to_string())
            .bind(first.get())
            .bind(last.get())
            .fetch_all(&self.pool)
            .await?;
        let rows = rows.iter().map(reaction_row).collect::<Result<_, _>>()?;
        attach_reactions(&mut events, rows);
        Ok(events)
    }
}
