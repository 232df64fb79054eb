use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ClientMsgId, MessageText, RoomId, Sender, Seq, SessionId, Timestamp};

/// What happened in a room. Every kind takes the next `seq` of its room. Its name on the wire,
/// in storage and in metrics is [`EventKind::as_str`], and nothing else spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventKind {
    Enter,
    Talk,
    Leave,
}

impl EventKind {
    pub const ALL: [Self; 3] = [Self::Enter, Self::Talk, Self::Leave];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enter => "ENTER",
            Self::Talk => "TALK",
            Self::Leave => "LEAVE",
        }
    }

    /// The kind named `raw`, exactly as [`EventKind::as_str`] spells it.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }
}

/// An event not yet stored: it has no `seq` until the store gives it one.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub room_id: RoomId,
    pub kind: EventKind,
    pub sender: Sender,
    pub message: String,
    pub client_msg_id: Option<ClientMsgId>,
    /// The session (on the writer's instance) that an ENTER makes a member of the room, or a
    /// LEAVE stops being one: the membership is stored in the same transaction as the event.
    pub session: Option<SessionId>,
}

impl NewEvent {
    pub fn talk(room_id: RoomId, sender: Sender, message: MessageText) -> Self {
        Self::new(room_id, EventKind::Talk, sender, message.into_string())
    }

    /// The session's ENTER: stored, it makes the session a member.
    pub fn enter(room_id: RoomId, sender: Sender, session: SessionId) -> Self {
        let message = format!("{} entered the room.", sender.as_str());
        Self {
            session: Some(session),
            ..Self::new(room_id, EventKind::Enter, sender, message)
        }
    }

    /// The session's LEAVE: stored, the session is no longer a member.
    pub fn leave(room_id: RoomId, sender: Sender, session: SessionId) -> Self {
        Self {
            session: Some(session),
            ..Self::departure(room_id, sender)
        }
    }

    /// A LEAVE for a member whose membership is already gone (its instance died).
    pub fn departure(room_id: RoomId, sender: Sender) -> Self {
        let message = format!("{} left the room.", sender.as_str());
        Self::new(room_id, EventKind::Leave, sender, message)
    }

    /// Echoes the `clientMsgId` of the frame that caused this event.
    pub fn correlated(self, client_msg_id: Option<ClientMsgId>) -> Self {
        Self {
            client_msg_id,
            ..self
        }
    }

    /// The bytes of text it carries, a lower bound of its size on the wire.
    pub fn text_bytes(&self) -> usize {
        let id = self
            .client_msg_id
            .as_ref()
            .map_or(0, |id| id.as_str().len());
        self.message.len() + self.sender.as_str().len() + id
    }

    fn new(room_id: RoomId, kind: EventKind, sender: Sender, message: String) -> Self {
        Self {
            room_id,
            kind,
            sender,
            message,
            client_msg_id: None,
            session: None,
        }
    }
}

/// A stored event, exactly as members receive it and as history returns it (and as instances
/// pass it to each other).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
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
    pub message: String,
    /// When the event was stored, RFC 3339 UTC with milliseconds.
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: super::Timestamp,
    /// The client's own id for the frame that caused this event, echoed when it gave one
    /// (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub client_msg_id: Option<String>,
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
        }
    }

    /// The bytes of text it carries, a lower bound of its size on the wire.
    pub fn text_bytes(&self) -> usize {
        let id = self.client_msg_id.as_ref().map_or(0, String::len);
        self.message.len() + self.sender.len() + id
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

    #[test]
    fn an_event_serializes_to_the_contract_shape() {
        let room_id = RoomId::random();
        let new = NewEvent {
            room_id,
            kind: EventKind::Talk,
            sender: Sender::parse("alice").unwrap(),
            message: "hello".into(),
            client_msg_id: Some(ClientMsgId::parse("c-17").unwrap()),
            session: None,
        };
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
