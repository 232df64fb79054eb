//! What a room's members hear besides its events: who is typing, and whose read marker rose.
//! Notices are not stored, have no seq, and travel outside the room's order.

use serde::{Deserialize, Serialize};

use super::{RoomId, Sender, Seq};

/// A notice to a room's members, as they receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Notice {
    #[serde(rename_all = "camelCase")]
    Typing { room_id: RoomId, sender: String },
    /// `sender` has now read the room through `seq`.
    #[serde(rename_all = "camelCase")]
    Read {
        room_id: RoomId,
        sender: String,
        seq: Seq,
    },
}

impl Notice {
    pub fn room_id(&self) -> RoomId {
        match self {
            Self::Typing { room_id, .. } | Self::Read { room_id, .. } => *room_id,
        }
    }

    /// The notice as members receive it.
    pub fn to_json(&self) -> Option<String> {
        serde_json::to_string(self)
            .inspect_err(|error| tracing::error!(%error, "could not serialize a notice"))
            .ok()
    }
}

/// A member's claim to have read a room through `seq`: stored as the highest so far per room
/// and sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMarker {
    pub room_id: RoomId,
    pub sender: Sender,
    pub seq: Seq,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_read_as_the_contract_writes_them() {
        let room_id = RoomId::random();
        let typing = Notice::Typing {
            room_id,
            sender: "alice".into(),
        };
        assert_eq!(
            serde_json::to_value(&typing).unwrap(),
            serde_json::json!({"type": "TYPING", "roomId": room_id, "sender": "alice"})
        );
        let read = Notice::Read {
            room_id,
            sender: "bob".into(),
            seq: Seq::new(41).unwrap(),
        };
        let text = read.to_json().unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({"type": "READ", "roomId": room_id, "sender": "bob", "seq": 41})
        );
        assert_eq!(serde_json::from_str::<Notice>(&text).unwrap(), read);
        assert_eq!(read.room_id(), room_id);
    }
}
