use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ClientMsgId, Emoji, Moderation, NewEvent, Reaction, RoomId, Seq, Timestamp};

/// What happened in a room. Every kind takes the next `seq` of its room. Its name on the wire,
/// in storage and in metrics is [`EventKind::as_str`], and nothing else spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventKind {
    Enter,
    Talk,
    Leave,
    /// A TALK's new text, by its author.
    Edit,
    /// A TALK taken back: its text (and that of its EDITs) is erased from storage.
    Delete,
    React,
    Unreact,
    /// A role granted or revoked, a kick, a ban, a mute, or one lifted (identity mode).
    Moderation,
}

impl EventKind {
    pub const ALL: [Self; 8] = [
        Self::Enter,
        Self::Talk,
        Self::Leave,
        Self::Edit,
        Self::Delete,
        Self::React,
        Self::Unreact,
        Self::Moderation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enter => "ENTER",
            Self::Talk => "TALK",
            Self::Leave => "LEAVE",
            Self::Edit => "EDIT",
            Self::Delete => "DELETE",
            Self::React => "REACT",
            Self::Unreact => "UNREACT",
            Self::Moderation => "MODERATION",
        }
    }

    /// The kind named `raw`, exactly as [`EventKind::as_str`] spells it.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    /// Whether it changes a TALK stored before it (its `targetSeq`).
    pub fn is_change(self) -> bool {
        matches!(
            self,
            Self::Edit | Self::Delete | Self::React | Self::Unreact
        )
    }

    /// Whether a resend under the same `clientMsgId` is the same message: what a client sends
    /// to change the room, not its membership.
    pub fn deduplicated(self) -> bool {
        !matches!(self, Self::Enter | Self::Leave)
    }
}

/// A stored event, exactly as members receive it and as history returns it (and as instances
/// pass it to each other).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", try_from = "super::event_json::EventJson")]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub room_id: RoomId,
    /// Position in the room: starts at 1, grows by exactly 1 per event.
    #[schema(value_type = i64, minimum = 1)]
    pub seq: Seq,
    #[schema(value_type = String, format = Uuid)]
    pub message_id: Uuid,
    pub sender: String,
    /// The text: a TALK's (read from storage: its latest), an EDIT's, or what an ENTER or a
    /// LEAVE says. Absent on DELETE, REACT and UNREACT, and once its TALK was deleted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the event was stored, RFC 3339 UTC with milliseconds.
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: super::Timestamp,
    /// The client's own id for the frame that caused this event, echoed when it gave one
    /// (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub client_msg_id: Option<String>,
    /// The TALK an EDIT, DELETE, REACT or UNREACT is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>, minimum = 1, nullable = false)]
    pub target_seq: Option<Seq>,
    /// A REACT's or UNREACT's emoji.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub emoji: Option<String>,
    /// The TALK this TALK answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>, minimum = 1, nullable = false)]
    pub reply_to: Option<Seq>,
    /// Read from storage: when a TALK was last edited (absent when never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime, nullable = false)]
    pub edited_at: Option<Timestamp>,
    /// Read from storage: the TALK (or the TALK an EDIT changed) was deleted; its text is gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Read from storage: a TALK's reactions, in the order each emoji was first used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// A MODERATION event's `action`, `target`, `by` and, as they apply, `role`, `until`
    /// and `reason`. Boxed: few events carry it, and every event's size counts.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<Box<Moderation>>,
    /// Sent by an identity whose token's roles include `bot` (absent otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
}

impl Event {
    /// Stamps a new event with the identity and position the store assigned it.
    pub fn stored(new: NewEvent, seq: Seq, message_id: Uuid, sent_at: Timestamp) -> Self {
        Self {
            kind: new.kind,
            room_id: new.room_id,
            seq,
            message_id,
            sender: new.sender.into_string(),
            message: new.message,
            sent_at,
            client_msg_id: new.client_msg_id.map(ClientMsgId::into_string),
            target_seq: new.target_seq,
            emoji: new.emoji.map(Emoji::into_string),
            reply_to: new.reply_to,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            moderation: new.moderation,
            bot: new.bot,
        }
    }

    /// A MODERATION event's action, as it is spelt.
    pub fn action(&self) -> Option<&'static str> {
        self.moderation
            .as_ref()
            .map(|moderation| moderation.action.as_str())
    }

    /// The bytes of text it carries, a lower bound of its size on the wire.
    pub fn text_bytes(&self) -> usize {
        let id = self.client_msg_id.as_ref().map_or(0, String::len);
        let emoji = self.emoji.as_ref().map_or(0, String::len);
        let reactions: usize = self
            .reactions
            .iter()
            .flat_map(|reaction| &reaction.senders)
            .map(String::len)
            .sum();
        self.message.len() + self.sender.len() + id + emoji + reactions
    }

    /// The event as members receive it: its JSON, made once and shared by every recipient.
    pub fn to_json(&self) -> Option<String> {
        match serde_json::to_string(self) {
            Ok(json) => Some(json),
            Err(error) => {
                tracing::error!(%error, seq = %self.seq, "could not serialize an event");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MessageText, Sender};

    #[test]
    fn an_event_serializes_to_the_contract_shape() {
        let room_id = RoomId::random();
        let new = NewEvent::talk(
            room_id,
            Sender::parse("alice").unwrap(),
            MessageText::parse("hello").unwrap(),
        )
        .correlated(Some(ClientMsgId::parse("c-17").unwrap()));
        let event = Event::stored(
            new,
            Seq::new(42).unwrap(),
            Uuid::nil(),
            Timestamp::from_millis(0),
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "TALK");
        assert_eq!(json["roomId"], room_id.to_string());
        assert_eq!(json["seq"], 42);
        assert_eq!(json["sentAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["clientMsgId"], "c-17");
        assert_eq!(
            serde_json::from_value::<Event>(json.clone()).unwrap(),
            event
        );
        for absent in [
            "targetSeq",
            "emoji",
            "replyTo",
            "editedAt",
            "deleted",
            "reactions",
        ] {
            assert!(
                json.get(absent).is_none(),
                "{absent} is left out of a plain TALK"
            );
        }
    }

    #[test]
    fn a_change_carries_its_target_and_no_empty_message() {
        let room_id = RoomId::random();
        let react = NewEvent::reaction(
            room_id,
            EventKind::React,
            Sender::parse("bob").unwrap(),
            Seq::new(42).unwrap(),
            Emoji::parse("👍").unwrap(),
        );
        let event = Event::stored(
            react,
            Seq::new(43).unwrap(),
            Uuid::nil(),
            Timestamp::from_millis(0),
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "REACT");
        assert_eq!(json["targetSeq"], 42);
        assert_eq!(json["emoji"], "👍");
        assert!(json.get("message").is_none());
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
    }

    #[test]
    fn every_kind_is_spelled_once_and_parses_back() {
        for kind in EventKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str(), "serde and as_str agree");
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("talk"), None);
    }

    #[test]
    fn presence_events_carry_the_contract_wording() {
        let sender = Sender::parse("alice").unwrap();
        let room = RoomId::random();
        assert_eq!(
            NewEvent::enter(room, sender.clone(), 1).message,
            "alice entered the room."
        );
        assert_eq!(
            NewEvent::leave(room, sender, 1).message,
            "alice left the room."
        );
    }
}
