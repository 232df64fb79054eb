//! What both backends read back the same way: pages of events (and their reactions), members
//! pages, a room's retention, and what messages that change added to an event's row.

use futures_util::{Stream, TryStreamExt};

use super::{MemberRecord, MembersPage, PageLimit, StoreError, Target};
use uuid::Uuid;

use crate::domain::{
    Event, EventKind, Moderation, Reaction, Retention, RoomId, Seq, Timestamp, Visibility,
};

/// Reads events from `rows` (ascending) until the page is full by `limit`: a page holds at
/// least one event, and ends with the one whose text reaches the byte bound.
pub(crate) async fn read_page<R>(
    mut rows: impl Stream<Item = Result<R, sqlx::Error>> + Unpin,
    limit: PageLimit,
    event_from_row: impl Fn(&R) -> Result<Event, StoreError>,
) -> Result<Vec<Event>, StoreError> {
    let (mut page, mut bytes) = (Vec::new(), 0);
    while bytes < limit.bytes
        && let Some(row) = rows.try_next().await?
    {
        let event = event_from_row(&row)?;
        bytes += event.text_bytes();
        page.push(event);
    }
    Ok(page)
}

/// The query, the same on either backend but for its placeholders, that reads the reactions
/// on a room's TALKs from `$2` to `$3`: for each TALK and emoji, the first
/// [`Reaction::MAX_SENDERS`] senders and how many there are, by TALK then by the REACT that
/// made each (so each emoji first appears where it was first used).
pub(crate) const REACTIONS_BETWEEN: &str = "SELECT target_seq, emoji, sender, total FROM ( \
       SELECT target_seq, emoji, sender, seq, \
              ROW_NUMBER() OVER (PARTITION BY target_seq, emoji ORDER BY seq) AS nth, \
              COUNT(*) OVER (PARTITION BY target_seq, emoji) AS total \
       FROM reactions WHERE room_id = $1 AND target_seq BETWEEN $2 AND $3) AS ranked \
     WHERE nth <= 100 ORDER BY target_seq, seq";

/// The lowest and highest seq of a page's TALKs; None when it holds none.
pub(crate) fn talk_span(events: &[Event]) -> Option<(Seq, Seq)> {
    let mut talks = events.iter().filter(|event| event.kind == EventKind::Talk);
    let first = talks.next()?.seq;
    Some((first, talks.next_back().map_or(first, |last| last.seq)))
}

/// One row of [`REACTIONS_BETWEEN`], the same on either backend.
pub(crate) fn reaction_row<'r, R>(row: &'r R) -> Result<(Seq, String, String, i64), StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok((
        parse_seq(row.try_get("target_seq")?)?,
        row.try_get("emoji")?,
        row.try_get("sender")?,
        row.try_get("total")?,
    ))
}

/// Puts each TALK's reactions on it, from rows of [`REACTIONS_BETWEEN`]: (TALK, emoji,
/// sender, how many reacted so).
pub(crate) fn attach_reactions(events: &mut [Event], rows: Vec<(Seq, String, String, i64)>) {
    let mut rows = rows.into_iter().peekable();
    for event in events
        .iter_mut()
        .filter(|event| event.kind == EventKind::Talk)
    {
        while rows.next_if(|(target, ..)| *target < event.seq).is_some() {}
        while let Some((_, emoji, sender, total)) =
            rows.next_if(|(target, ..)| *target == event.seq)
        {
            match event
                .reactions
                .iter_mut()
                .find(|reaction| reaction.emoji == emoji)
            {
                Some(reaction) => reaction.senders.push(sender),
                None => event.reactions.push(Reaction {
                    emoji,
                    count: u32::try_from(total).unwrap_or(u32::MAX),
                    senders: vec![sender],
                }),
            }
        }
    }
}

/// The page a members query's rows make, on either backend. Each row holds, by position, the
/// room's newest seq, then one sender's name, sessions, since and read seq (all null when the
/// room has nobody on this page). No row: the room does not exist.
pub(crate) fn members_page<R>(rows: &[R]) -> Result<Option<MembersPage>, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let as_of_seq = parse_seq(first.try_get(0)?)?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(sender) = row.try_get::<Option<String>, _>(1)? else {
            continue;
        };
        let sessions: i64 = row.try_get(2)?;
        items.push(MemberRecord {
            sender,
            sessions: u32::try_from(sessions).unwrap_or(u32::MAX),
            since: Timestamp::from_millis(row.try_get(3)?),
            read_seq: parse_seq(row.try_get(4)?)?,
        });
    }
    Ok(Some(MembersPage { as_of_seq, items }))
}

/// Reads a room's retention, first seq and visibility from its row, the same on either
/// backend.
pub(crate) fn read_room<'r, R>(row: &'r R) -> Result<(Retention, Seq, Visibility), StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let retention = read_retention(row, "retention_max_age")?;
    let erased_through = parse_seq(row.try_get("erased_through")?)?;
    let first_seq = erased_through
        .next()
        .ok_or_else(|| StoreError::Corrupt("erased_through".to_owned()))?;
    let visibility: &str = row.try_get("visibility")?;
    let visibility = Visibility::parse(visibility)
        .ok_or_else(|| StoreError::Corrupt(format!("visibility {visibility:?}")))?;
    Ok((retention, first_seq, visibility))
}

/// Reads a retention from a row: its age in seconds from `age_column`, and
/// `retention_max_events`.
pub(crate) fn read_retention<'r, R>(
    row: &'r R,
    age_column: &'static str,
) -> Result<Retention, StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let limit = |column| -> Result<Option<u64>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .and_then(|raw| u64::try_from(raw).ok()))
    };
    Ok(Retention {
        max_age_seconds: limit(age_column)?,
        max_events: limit("retention_max_events")?,
    })
}

/// Reads the row of an event a change or a reply names (its kind, seq, sender and delete
/// mark), the same on either backend but for how each stores room ids.
pub(crate) fn read_target<'r, R>(row: &'r R, room_id: RoomId) -> Result<Target, StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Target {
        room_id,
        seq: parse_seq(row.try_get("seq")?)?,
        kind: parse_kind(row.try_get("kind")?)?,
        sender: row.try_get("sender")?,
        deleted: row.try_get("deleted")?,
    })
}

fn parse_kind(kind: &str) -> Result<EventKind, StoreError> {
    EventKind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("event kind {kind:?}")))
}

/// Reads an event's row, the same on either backend but for how each stores its ids: its
/// kind, seq, sender and times, and what messages that change added (the latest text, none
/// once erased; the target, emoji and reply; the edit and delete marks).
pub(crate) fn read_event<'r, R>(
    row: &'r R,
    room_id: RoomId,
    message_id: Uuid,
) -> Result<Event, StoreError>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let seq = |column| -> Result<Option<Seq>, StoreError> {
        row.try_get::<Option<i64>, _>(column)?
            .map(parse_seq)
            .transpose()
    };
    Ok(Event {
        kind: parse_kind(row.try_get("kind")?)?,
        room_id,
        seq: parse_seq(row.try_get("seq")?)?,
        message_id,
        sender: row.try_get("sender")?,
        message: row
            .try_get::<Option<String>, _>("message")?
            .unwrap_or_default(),
        sent_at: Timestamp::from_millis(row.try_get("sent_at")?),
        client_msg_id: row.try_get("client_msg_id")?,
        target_seq: seq("target_seq")?,
        emoji: row.try_get("emoji")?,
        reply_to: seq("reply_to")?,
        edited_at: row
            .try_get::<Option<i64>, _>("edited_at")?
            .map(Timestamp::from_millis),
        deleted: row.try_get("deleted")?,
        reactions: Vec::new(),
        moderation: row
            .try_get::<Option<String>, _>("moderation")?
            .map(|json| read_moderation(&json))
            .transpose()?,
        bot: row.try_get("bot")?,
    })
}

/// A MODERATION event's details, as its row keeps them (JSON).
fn read_moderation(json: &str) -> Result<Box<Moderation>, StoreError> {
    serde_json::from_str(json)
        .map(Box::new)
        .map_err(|_| StoreError::Corrupt(format!("moderation {json:?}")))
}

/// A MODERATION event's details as its row keeps them; None for any other event.
pub(crate) fn moderation_column(event: &Event) -> Option<String> {
    let moderation = event.moderation.as_deref()?;
    serde_json::to_string(moderation).ok()
}

pub(crate) fn parse_seq(raw: i64) -> Result<Seq, StoreError> {
    Seq::new(raw).ok_or_else(|| StoreError::Corrupt(format!("seq {raw}")))
}
