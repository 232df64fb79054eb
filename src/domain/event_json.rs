//! How an [`Event`] is read back from its JSON (another instance's, over the broker): the
//! contract's fields one by one, a MODERATION's details among them. Derived with the details
//! flattened, reading buffered the unknown fields through serde's generic content and built,
//! for every event without details, an error to throw away: 650-690 ns per TALK and about
//! 1,050 per MODERATION then, 550-560 and 790 now (`cargo run --release --example
//! decode_bench`, 2 shared cores).

use serde::Deserialize;
use uuid::Uuid;

use super::{Action, Event, EventKind, Moderation, Reaction, Role, RoomId, Seq, Timestamp};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EventJson {
    #[serde(rename = "type")]
    kind: EventKind,
    room_id: RoomId,
    seq: Seq,
    message_id: Uuid,
    sender: String,
    #[serde(default)]
    message: String,
    sent_at: Timestamp,
    #[serde(default)]
    client_msg_id: Option<String>,
    #[serde(default)]
    target_seq: Option<Seq>,
    #[serde(default)]
    emoji: Option<String>,
    #[serde(default)]
    reply_to: Option<Seq>,
    #[serde(default)]
    edited_at: Option<Timestamp>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    reactions: Vec<Reaction>,
    #[serde(default)]
    action: Option<Action>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    until: Option<Timestamp>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    bot: bool,
}

/// A MODERATION's `action` without the `target` or `by` it needs.
#[derive(Debug, thiserror::Error)]
#[error("a moderation's action comes with its target and by")]
pub(super) struct Incomplete;

impl TryFrom<EventJson> for Event {
    type Error = Incomplete;

    fn try_from(json: EventJson) -> Result<Self, Incomplete> {
        let moderation = match (json.action, json.target, json.by) {
            (None, _, _) => None,
            (Some(action), Some(target), Some(by)) => Some(Box::new(Moderation {
                action,
                target,
                by,
                role: json.role,
                until: json.until,
                reason: json.reason,
            })),
            (Some(_), _, _) => return Err(Incomplete),
        };
        Ok(Self {
            kind: json.kind,
            room_id: json.room_id,
            seq: json.seq,
            message_id: json.message_id,
            sender: json.sender,
            message: json.message,
            sent_at: json.sent_at,
            client_msg_id: json.client_msg_id,
            target_seq: json.target_seq,
            emoji: json.emoji,
            reply_to: json.reply_to,
            edited_at: json.edited_at,
            deleted: json.deleted,
            reactions: json.reactions,
            moderation,
            bot: json.bot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Sender;

    #[test]
    fn a_moderation_reads_back_whole_and_an_action_without_its_names_is_refused() {
        let alice = Sender::parse("alice").unwrap();
        let mallory = Sender::parse("mallory").unwrap();
        let mut details = Moderation::new(Action::Ban, &mallory, &alice);
        details.until = Some(Timestamp::from_millis(1_794_727_800_123));
        details.reason = Some("spam".into());
        let json = serde_json::json!({"type": "MODERATION",
            "roomId": RoomId::random().to_string(), "seq": 7,
            "messageId": Uuid::nil().to_string(), "sender": "alice",
            "sentAt": "2026-12-07T00:00:00.000Z", "action": "ban", "target": "mallory",
            "by": "alice", "until": "2026-11-15T07:30:00.123Z", "reason": "spam"});
        let event: Event = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(event.moderation.as_deref(), Some(&details));
        assert_eq!(serde_json::to_value(&event).unwrap(), json);

        let mut incomplete = json;
        incomplete.as_object_mut().unwrap().remove("target");
        let error = serde_json::from_value::<Event>(incomplete).unwrap_err();
        assert!(error.to_string().contains("target and by"), "{error}");
    }
}
