use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{MessageText, RoomId, Sender, Timestamp};

/// What happened in a room. Every kind takes the next `seq` of its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventKind {
    Enter,
    Talk,
    Leave,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enter => "ENTER",
            Self::Talk => "TALK",
            Self::Leave => "LEAVE",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "ENTER" => Some(Self::Enter),
            "TALK" => Some(Self::Talk),
            "LEAVE" => Some(Self::Leave),
            _ => None,
        }
    }
}

/// An event not yet stored: it has no `seq` until the store gives it one.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub room_id: RoomId,
    pub kind: EventKind,
    pub sender: Sender,
    pub message: String,
    pub client_msg_id: Option<String>,
}

impl NewEvent {
    pub fn talk(room_id: RoomId, sender: Sender, message: MessageText) -> Self {
        Self::new(room_id, EventKind::Talk, sender, message.into_string())
    }

    pub fn enter(room_id: RoomId, sender: Sender) -> Self {
        let message = format!("{} entered the room.", sender.as_str());
        Self::new(room_id, EventKind::Enter, sender, message)
    }

    pub fn leave(room_id: RoomId, sender: Sender) -> Self {
        let message = format!("{} left the room.", sender.as_str());
        Self::new(room_id, EventKind::Leave, sender, message)
    }

    /// Echoes the `clientMsgId` of the frame that caused this event.
    pub fn correlated(self, client_msg_id: Option<String>) -> Self {
        Self {
            client_msg_id,
            ..self
        }
    }

    fn new(room_id: RoomId, kind: EventKind, sender: Sender, message: String) -> Self {
        Self {
            room_id,
            kind,
            sender,
            message,
            client_msg_id: None,
        }
    }
}

/// A stored event, exactly as members receive it and as history returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub room_id: RoomId,
    /// Position in the room: starts at 1, grows by exactly 1 per event.
    #[schema(minimum = 1)]
    pub seq: i64,
    #[schema(value_type = String, format = Uuid)]
    pub message_id: Uuid,
    pub sender: String,
    pub message: String,
    /// When the event was stored, RFC 3339 UTC with milliseconds.
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: super::Timestamp,
    /// The client's own id for the frame that caused this event, echoed when it gave one
    /// (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub client_msg_id: Option<String>,
}

impl Event {
    /// Stamps a new event with the identity and position the store assigned it.
    pub fn stored(new: NewEvent, seq: i64, message_id: Uuid, sent_at: Timestamp) -> Self {
        Self {
            kind: new.kind,
            room_id: new.room_id,
            seq,
            message_id,
            sender: new.sender.as_str().to_owned(),
            message: new.message,
            sent_at,
            client_msg_id: new.client_msg_id,
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
            client_msg_id: Some("c-17".into()),
        };
        let event = Event::stored(new, 42, Uuid::nil(), Timestamp::from_millis(0));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "TALK");
        assert_eq!(json["roomId"], room_id.to_string());
        assert_eq!(json["seq"], 42);
        assert_eq!(json["sentAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["clientMsgId"], "c-17");
    }

    #[test]
    fn presence_events_carry_the_contract_wording() {
        let sender = Sender::parse("alice").unwrap();
        let room = RoomId::random();
        assert_eq!(
            NewEvent::enter(room, sender.clone()).message,
            "alice entered the room."
        );
        assert_eq!(
            NewEvent::leave(room, sender).message,
            "alice left the room."
        );
    }
}
