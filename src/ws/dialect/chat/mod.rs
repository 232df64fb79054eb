//! The WebSocket wire format: what clients send ([`ClientFrame`], parsed from text in one pass),
//! the frames the server sends besides events, and [`WsError`], mapped once to an `ERROR`
//! frame's `code`.

mod parse;

use bytestring::ByteString;
use serde_json::json;

use crate::domain::{
    ClientMsgId, DomainError, Emoji, Event, MessageText, Removal, RoomId, Sender, Seq,
};
use crate::writer::{AppendError, Stored};

pub use self::parse::parse;

/// A client frame that passed every check of the contract. Every frame may carry a
/// `clientMsgId`; it is echoed on the event the frame produces and on any refusal of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    pub room_id: RoomId,
    pub sender: Sender,
    pub client_msg_id: Option<ClientMsgId>,
    pub action: Action,
}

/// What a client frame asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `echo`: whether the session's own TALKs come back in full in this room (None: as
    /// before, or yes for a newcomer).
    Enter {
        last_seq: Option<Seq>,
        echo: Option<bool>,
    },
    /// `reply_to`: the TALK it answers.
    Talk {
        message: MessageText,
        reply_to: Option<Seq>,
    },
    Leave,
    /// The sender is typing (a notice, not stored).
    Typing,
    /// The sender has read the room through `seq`.
    Read {
        seq: Seq,
    },
    Change(Change),
}

/// What a client frame asks to change about a stored TALK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The sender's TALK at `target_seq` gets new text.
    Edit {
        target_seq: Seq,
        message: MessageText,
    },
    /// The TALK at `target_seq` is taken back.
    Delete {
        target_seq: Seq,
    },
    React {
        target_seq: Seq,
        emoji: Emoji,
    },
    Unreact {
        target_seq: Seq,
        emoji: Emoji,
    },
}

impl Action {
    /// Its `type`, as the client wrote it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Enter { .. } => "ENTER",
            Self::Talk { .. } => "TALK",
            Self::Leave => "LEAVE",
            Self::Typing => "TYPING",
            Self::Read { .. } => "READ",
            Self::Change(change) => change.name(),
        }
    }
}

impl Change {
    /// Whether it says something (an EDIT, a REACT), which a muted sender may not; taking
    /// back one's own message or reaction it may.
    pub fn speaks(&self) -> bool {
        matches!(self, Self::Edit { .. } | Self::React { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Edit { .. } => "EDIT",
            Self::Delete { .. } => "DELETE",
            Self::React { .. } => "REACT",
            Self::Unreact { .. } => "UNREACT",
        }
    }
}

/// Everything that can go wrong with one client frame. Sent only to that client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("frame is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidMessage(String),
    #[error("room {0} does not exist")]
    RoomNotFound(RoomId),
    #[error("enter room {0} before sending {1}")]
    NotInRoom(RoomId, &'static str),
    #[error("this session entered room {room_id} as {entered:?}")]
    SenderMismatch { room_id: RoomId, entered: String },
    #[error("this session is signed in as {0:?}: frames must carry that sender")]
    NotSignedInAs(String),
    #[error("message must be at most {0} characters")]
    MessageTooLong(usize),
    #[error("too many frames; slow down")]
    RateLimited,
    #[error("no message at seq {0} in this room (or it was deleted)")]
    TargetNotFound(Seq),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NoChange(&'static str),
    #[error("a message has at most {0} different reactions")]
    TooManyReactions(usize),
    #[error("you are banned from room {0}")]
    Banned(RoomId),
    #[error("you are muted in room {0}: you may read, not talk")]
    Muted(RoomId),
    #[error("storage is unavailable, try again")]
    Unavailable,
}

impl WsError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "INVALID_JSON",
            Self::InvalidMessage(_) => "INVALID_MESSAGE",
            Self::RoomNotFound(_) => "ROOM_NOT_FOUND",
            Self::NotInRoom(..) => "NOT_IN_ROOM",
            Self::SenderMismatch { .. } | Self::NotSignedInAs(_) => "SENDER_MISMATCH",
            Self::MessageTooLong(_) => "MESSAGE_TOO_LONG",
            Self::RateLimited => "RATE_LIMITED",
            Self::TargetNotFound(_) => "TARGET_NOT_FOUND",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NoChange(_) => "NO_CHANGE",
            Self::TooManyReactions(_) => "TOO_MANY_REACTIONS",
            Self::Banned(_) => "BANNED",
            Self::Muted(_) => "MUTED",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

impl From<DomainError> for WsError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::TooLong {
                field: "message",
                max,
            } => Self::MessageTooLong(max),
            other => Self::InvalidMessage(other.to_string()),
        }
    }
}

/// Why the writer did not store an append, as the client is told.
impl From<AppendError> for WsError {
    fn from(refused: AppendError) -> Self {
        match refused {
            AppendError::RoomNotFound(room_id) => Self::RoomNotFound(room_id),
            AppendError::NotMember(room_id) => Self::NotInRoom(room_id, "LEAVE"),
            AppendError::TargetNotFound(seq) => Self::TargetNotFound(seq),
            AppendError::Forbidden(why) => Self::Forbidden(why),
            AppendError::NoChange(why) => Self::NoChange(why),
            AppendError::TooManyReactions => Self::TooManyReactions(Emoji::MAX_PER_TALK),
            AppendError::Banned(room_id) => Self::Banned(room_id),
            AppendError::LastOwner => Self::Forbidden("the room must keep at least one owner"),
            AppendError::Unavailable => Self::Unavailable,
        }
    }
}

/// The ids a reply to a frame echoes, as the client wrote them (and, on STOMP, the receipt
/// it asked for).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Echo {
    pub room_id: Option<String>,
    pub client_msg_id: Option<String>,
    pub receipt: Option<String>,
}

impl From<&ClientFrame> for Echo {
    fn from(frame: &ClientFrame) -> Self {
        Self {
            room_id: Some(frame.room_id.to_string()),
            client_msg_id: frame
                .client_msg_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            receipt: None,
        }
    }
}

/// A refused frame, with the ids to echo so the client can tell which frame it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: WsError,
    pub echo: Echo,
}

impl Refusal {
    /// The `ERROR` frame for it.
    pub fn frame(&self) -> ByteString {
        let mut frame = json!({
            "type": "ERROR",
            "code": self.error.code(),
            "message": self.error.to_string(),
        });
        if let Some(room_id) = &self.echo.room_id {
            frame["roomId"] = json!(room_id);
        }
        if let Some(client_msg_id) = &self.echo.client_msg_id {
            frame["clientMsgId"] = json!(client_msg_id);
        }
        frame.to_string().into()
    }
}

/// The frame telling a member that its room was deleted.
/// A resume asked for events below the room's oldest still stored (its retention erased them):
/// what follows starts at `first_seq`.
pub fn truncated_frame(room_id: RoomId, first_seq: Seq) -> ByteString {
    json!({"type": "TRUNCATED", "roomId": room_id, "firstSeq": first_seq})
        .to_string()
        .into()
}

/// What a session removed from a room by a kick, a ban or a revoked role is told.
pub fn removed_frame(room_id: RoomId, reason: Removal) -> ByteString {
    json!({"type": "REMOVED", "roomId": room_id, "reason": reason.as_str()})
        .to_string()
        .into()
}

pub fn closed_frame(room_id: RoomId) -> ByteString {
    json!({"type": "CLOSED", "roomId": room_id})
        .to_string()
        .into()
}

/// The frame acknowledging a TALK stored in a room entered with `"echo": false`.
pub fn ack_frame(room_id: RoomId, stored: &Stored, client_msg_id: Option<&str>) -> ByteString {
    ack(room_id, stored, client_msg_id).to_string().into()
}

fn ack(room_id: RoomId, stored: &Stored, client_msg_id: Option<&str>) -> serde_json::Value {
    let mut frame = json!({
        "type": "ACK",
        "roomId": room_id,
        "seq": stored.seq,
        "messageId": stored.message_id,
        "sentAt": stored.sent_at,
    });
    if let Some(id) = client_msg_id {
        frame["clientMsgId"] = json!(id);
    }
    frame
}

/// What the sender of a resent TALK gets: the first one, as stored, marked `"duplicate": true`
/// (its `ACK`, so marked, in a room entered with `"echo": false`).
pub fn duplicate_frame(first: &Event, echo: bool) -> ByteString {
    let mut frame = match echo {
        true => serde_json::to_value(first).unwrap_or_default(),
        false => {
            let stored = Stored {
                seq: first.seq,
                message_id: first.message_id,
                sent_at: first.sent_at,
                standing: None,
            };
            ack(first.room_id, &stored, first.client_msg_id.as_deref())
        }
    };
    frame["duplicate"] = json!(true);
    frame.to_string().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "3f2c5a8e-8d2b-4a63-9a43-3c0c8a1d2e4f";

    fn refusal(text: &str) -> Refusal {
        parse(text).expect_err("frame should be refused")
    }

    fn enter_with(last_seq: &str) -> String {
        format!(r#"{{"type":"ENTER","roomId":"{ROOM}","sender":"a","lastSeq":{last_seq}}}"#)
    }

    #[test]
    fn a_talk_frame_parses_with_its_client_msg_id() {
        let frame = parse(&format!(
            r#"{{"type":"TALK","roomId":"{ROOM}","sender":" alice ","message":"hi","clientMsgId":"c-1"}}"#
        ))
        .unwrap();
        assert!(matches!(frame.action, Action::Talk { .. }));
        assert_eq!(frame.sender.as_str(), "alice");
        assert_eq!(frame.client_msg_id.unwrap().into_string(), "c-1");
    }

    #[test]
    fn strings_with_escapes_are_read_exactly() {
        let frame = parse(&format!(
            r#"{{"type":"TALK","roomId":"{ROOM}","sender":"a","message":"line\nnext \"q\" \u00e9"}}"#
        ))
        .unwrap();
        let Action::Talk { message, .. } = frame.action else {
            panic!("a TALK")
        };
        assert_eq!(message.into_string(), "line\nnext \"q\" é");
    }

    #[test]
    fn last_seq_is_an_integer_from_0_to_2_pow_63_minus_1() {
        for (raw, expected) in [("0", Seq::ZERO), ("9223372036854775807", Seq::MAX)] {
            let frame = parse(&enter_with(raw)).unwrap();
            assert_eq!(
                frame.action,
                Action::Enter {
                    last_seq: Some(expected),
                    echo: None
                }
            );
        }
        for raw in [
            "-1",
            "9223372036854775808",
            "18446744073709551616",
            "1.5",
            "1e3",
            "\"3\"",
            "[]",
            "{}",
        ] {
            let refused = refusal(&enter_with(raw));
            assert_eq!(refused.error.code(), "INVALID_MESSAGE", "lastSeq {raw}");
            assert_eq!(refused.echo.room_id.as_deref(), Some(ROOM), "lastSeq {raw}");
        }
        let absent = parse(&enter_with("null")).unwrap();
        assert_eq!(
            absent.action,
            Action::Enter {
                last_seq: None,
                echo: None
            }
        );
    }

    #[test]
    fn echo_is_true_or_false_and_nothing_else() {
        let enter = |echo: &str| {
            parse(&format!(
                r#"{{"type":"ENTER","roomId":"{ROOM}","sender":"a","echo":{echo}}}"#
            ))
        };
        for (raw, expected) in [("false", Some(false)), ("true", Some(true)), ("null", None)] {
            let frame = enter(raw).unwrap();
            assert!(matches!(frame.action, Action::Enter { echo, .. } if echo == expected));
        }
        for raw in ["0", "\"false\"", "[]"] {
            assert_eq!(
                enter(raw).unwrap_err().error.code(),
                "INVALID_MESSAGE",
                "{raw}"
            );
        }
    }

    #[test]
    fn text_that_is_not_json_is_invalid_json() {
        for text in [
            "{nope",
            "",
            "9U8:a2U+XL46b~",
            "42 43",
            "[1,",
            "\"open",
            "nul",
            "{\"type\":\"TALK\"} x",
        ] {
            assert_eq!(refusal(text).error.code(), "INVALID_JSON", "{text}");
        }
    }

    #[test]
    fn json_that_is_not_an_object_is_an_invalid_message() {
        for text in ["[1,2]", "42", "\"ENTER\"", "null"] {
            let refused = refusal(text);
            assert_eq!(refused.error.code(), "INVALID_MESSAGE", "{text}");
            assert!(!refused.error.to_string().contains("RawFrame"), "{text}");
        }
    }

    #[test]
    fn an_unknown_type_is_an_invalid_message_that_echoes_ids() {
        let refused = refusal(&format!(
            r#"{{"type":"SHOUT","roomId":"{ROOM}","sender":"a","clientMsgId":"c-9"}}"#
        ));
        assert_eq!(refused.error.code(), "INVALID_MESSAGE");
        assert_eq!(refused.echo.room_id.as_deref(), Some(ROOM));
        assert_eq!(refused.echo.client_msg_id.as_deref(), Some("c-9"));
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named_and_the_ids_still_echoed() {
        let refused = refusal(&format!(
            r#"{{"type":"TALK","roomId":"{ROOM}","sender":7,"message":"x","clientMsgId":"c-2"}}"#
        ));
        assert_eq!(
            refused.error,
            WsError::InvalidMessage("sender must be a string".into())
        );
        assert_eq!(refused.echo.client_msg_id.as_deref(), Some("c-2"));
    }

    #[test]
    fn a_repeated_field_is_an_invalid_message() {
        let refused = refusal(&format!(
            r#"{{"type":"LEAVE","type":"TALK","roomId":"{ROOM}"}}"#
        ));
        assert_eq!(refused.error.code(), "INVALID_MESSAGE");
    }

    #[test]
    fn a_room_id_that_is_not_a_uuid_is_an_invalid_message() {
        let refused = refusal(r#"{"type":"ENTER","roomId":"nope","sender":"a"}"#);
        assert_eq!(refused.error.code(), "INVALID_MESSAGE");
        assert_eq!(refused.echo.room_id.as_deref(), Some("nope"));
    }

    #[test]
    fn a_message_over_4000_characters_is_message_too_long() {
        let text = format!(
            r#"{{"type":"TALK","roomId":"{ROOM}","sender":"a","message":"{}"}}"#,
            "x".repeat(4001)
        );
        assert_eq!(refusal(&text).error.code(), "MESSAGE_TOO_LONG");
    }

    #[test]
    fn a_client_msg_id_over_128_characters_is_an_invalid_message() {
        let text = format!(
            r#"{{"type":"LEAVE","roomId":"{ROOM}","sender":"a","clientMsgId":"{}"}}"#,
            "i".repeat(129)
        );
        assert_eq!(refusal(&text).error.code(), "INVALID_MESSAGE");
    }

    #[test]
    fn an_error_frame_has_the_contract_shape() {
        let refused = refusal(&format!(r#"{{"type":"NOPE","roomId":"{ROOM}"}}"#));
        let frame = refused.frame();
        assert!(frame.starts_with(r#"{"type":"ERROR","code":"#), "{frame}");
        let json: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(json["type"], "ERROR");
        assert_eq!(json["code"], "INVALID_MESSAGE");
        assert_eq!(json["roomId"], ROOM);
        assert!(json.get("clientMsgId").is_none());
    }

    #[test]
    fn a_closed_frame_names_its_room() {
        let room_id = RoomId::parse(ROOM).unwrap();
        let json: serde_json::Value = serde_json::from_str(&closed_frame(room_id)).unwrap();
        assert_eq!(json, json!({"type": "CLOSED", "roomId": ROOM}));
    }
}
