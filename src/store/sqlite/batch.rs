//! The SQL of a batch's steps before COMMIT, each step's statements built to go in one call:
//! each call is a round trip to SQLite's thread. Rooms go as JSON arrays (one statement's text
//! for any number of them, so the prepared-statement cache stays small); what a client wrote
//! is bound, never put in JSON.

use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite};

use crate::domain::{Event, ReadMarker, RoomId, Seq};
use crate::store::{Delivered, Membership, ResendKey, moderation_column};

/// An event's text as stored: none (NULL) for the kinds that carry none.
fn text(message: &str) -> Option<String> {
    (!message.is_empty()).then(|| message.to_owned())
}

/// Room ids as a JSON array, for `json_each`: one statement whatever their number (each
/// statement's text is prepared once and kept, so one shape for any count keeps the cache
/// small). Ids are UUIDs, which JSON carries as they are.
pub(super) fn json_rooms(rooms: &[RoomId]) -> String {
    Value::from_iter(rooms.iter().map(RoomId::to_string)).to_string()
}

/// Rooms with a seq each (a room's newest seq, or a TALK) as a JSON array of `[room id, seq]`,
/// for `json_each`.
pub(super) fn json_room_seqs(pairs: &[(RoomId, Seq)]) -> String {
    let pairs = pairs
        .iter()
        .map(|(room_id, seq)| json!([room_id.to_string(), seq.get()]));
    Value::from_iter(pairs).to_string()
}

/// Memberships as a JSON array of `[instance id, session id, room id]`, for `json_each`.
pub(super) fn json_memberships(members: &[Membership]) -> String {
    let rows = members.iter().map(|member| {
        json!([
            member.instance.to_string(),
            member.session,
            member.room_id.to_string()
        ])
    });
    Value::from_iter(rows).to_string()
}

/// Webhooks' delivery positions as a JSON array of `[webhook id, room id, seq]`, for
/// `json_each`.
pub(super) fn json_positions(positions: &[Delivered]) -> String {
    let rows = positions.iter().map(|position| {
        json!([
            position.webhook_id.to_string(),
            position.room_id.to_string(),
            position.seq.get()
        ])
    });
    Value::from_iter(rows).to_string()
}

/// The stored events these keys name. A join, not `(…) IN (VALUES …)`: SQLite scans the whole
/// table for the latter, while this looks each key up in the resend index (its WHERE is the
/// index's own). Senders and ids are bound, never put in JSON: they may hold any character.
pub(super) fn push_find_resent(query: &mut QueryBuilder<Sqlite>, keys: &[ResendKey<'_>]) {
    query.push("SELECT events.* FROM (");
    query.push_values(keys, |mut row, (room_id, sender, id)| {
        row.push_bind(room_id.to_string())
            .push_bind(sender.to_string())
            .push_bind(id.to_string());
    });
    query.push(
        ") AS resent JOIN events ON events.room_id = resent.column1 \
         AND events.sender = resent.column2 AND events.client_msg_id = resent.column3 \
         WHERE events.kind NOT IN ('ENTER', 'LEAVE') AND events.client_msg_id IS NOT NULL",
    );
}

/// `OR FAIL`: a violated constraint stops the statement without undoing the rows it already
/// inserted, which is what spares SQLite a statement journal (every page the INSERT touches
/// copied first, in memory allocated and freed per statement). Safe because a failed step
/// never commits: the batch's transaction is discarded whole, and an event stored on its own
/// is the only row of its statement, under a savepoint.
pub(super) fn push_insert_events(query: &mut QueryBuilder<Sqlite>, events: &[&Event]) {
    query.push(
        "INSERT OR FAIL INTO events (room_id, seq, message_id, kind, sender, message, \
         client_msg_id, sent_at, target_seq, emoji, reply_to, moderation, bot) ",
    );
    query.push_values(events, |mut row, event| {
        row.push_bind(event.room_id.to_string())
            .push_bind(event.seq.get())
            .push_bind(event.message_id.to_string())
            .push_bind(event.kind.as_str())
            .push_bind(event.sender.clone())
            .push_bind(text(&event.message))
            .push_bind(event.client_msg_id.clone())
            .push_bind(event.sent_at.millis())
            .push_bind(event.target_seq.map(Seq::get))
            .push_bind(event.emoji.clone())
            .push_bind(event.reply_to.map(Seq::get))
            .push_bind(moderation_column(event))
            .push_bind(event.bot);
    });
}

/// Raises a sender's read marker in its room to its seq (no higher than the room's newest
/// event) where that is higher than the stored one, returning the new value if it rose.
pub(super) fn push_raise_read_marker(query: &mut QueryBuilder<Sqlite>, marker: &ReadMarker) {
    let seq = marker.seq.get();
    query.push("INSERT INTO read_markers (room_id, sender, read_seq) SELECT room_id, ");
    query.push_bind(marker.sender.as_str().to_owned());
    query
        .push(", MIN(")
        .push_bind(seq)
        .push(", last_seq) FROM rooms WHERE room_id = ");
    query.push_bind(marker.room_id.to_string());
    query
        .push(" AND MIN(")
        .push_bind(seq)
        .push(", last_seq) > 0 ");
    query.push(
        "ON CONFLICT (room_id, sender) DO UPDATE SET read_seq = excluded.read_seq \
         WHERE read_markers.read_seq < excluded.read_seq RETURNING read_seq;",
    );
}
