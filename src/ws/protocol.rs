//! The WebSocket wire format: what clients send ([`ClientFrame`], parsed from text), what the
//! server sends besides events ([`ServerFrame`]), and [`WsError`], mapped once to an `ERROR`
//! frame's `code`.

use std::borrow::Cow;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use crate::domain::{ClientMsgId, DomainError, MessageText, RoomId, Sender};

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
    Enter { last_seq: Option<i64> },
    Talk { message: MessageText },
    Leave,
}

impl ClientFrame {
    pub fn kind(&self) -> &'static str {
        match self.action {
            Action::Enter { .. } => "ENTER",
            Action::Talk { .. } => "TALK",
            Action::Leave => "LEAVE",
        }
    }

    /// The ids a refusal of this frame echoes: its room and its `clientMsgId`.
    pub fn echo_ids(&self) -> (String, Option<String>) {
        let client_msg_id = self.client_msg_id.as_ref().map(|id| id.as_str().to_owned());
        (self.room_id.to_string(), client_msg_id)
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
    #[error("message must be at most {0} characters")]
    MessageTooLong(usize),
    #[error("too many frames; slow down")]
    RateLimited,
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
            Self::SenderMismatch { .. } => "SENDER_MISMATCH",
            Self::MessageTooLong(_) => "MESSAGE_TOO_LONG",
            Self::RateLimited => "RATE_LIMITED",
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

/// A refused frame, with the ids to echo so the client can tell which frame it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: WsError,
    pub room_id: Option<String>,
    pub client_msg_id: Option<String>,
}

/// Frames the server sends that are not events.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum ServerFrame<'a> {
    /// The room was deleted; the session is no longer in it.
    #[serde(rename_all = "camelCase")]
    Closed { room_id: RoomId },
    /// A frame from this session was refused; the connection stays open.
    #[serde(rename_all = "camelCase")]
    Error {
        code: &'a str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        room_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
    },
}

impl Refusal {
    pub fn frame(&self) -> Option<ByteString> {
        encode(&ServerFrame::Error {
            code: self.error.code(),
            message: self.error.to_string(),
            room_id: self.room_id.as_deref(),
            client_msg_id: self.client_msg_id.as_deref(),
        })
    }
}

/// Serializes an outgoing frame once, to be shared by every recipient.
pub fn encode(value: &impl Serialize) -> Option<ByteString> {
    match serde_json::to_string(value) {
        Ok(json) => Some(json.into()),
        Err(error) => {
            tracing::error!(%error, "could not serialize an outgoing frame");
            None
        }
    }
}

/// The fields of a client frame before any rule is checked. Strings borrow from the frame
/// when they hold no escapes, so a well-formed frame is parsed in one pass without copies.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    room_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sender: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    last_seq: Option<u64>,
}

/// Parses one text frame, or says exactly why it was refused.
pub fn parse(text: &str) -> Result<ClientFrame, Refusal> {
    match serde_json::from_str::<RawFrame>(text) {
        Ok(raw) => {
            let room_id = raw.room_id.as_deref().map(str::to_owned);
            let client_msg_id = raw.client_msg_id.as_deref().map(str::to_owned);
            raw.validate().map_err(|error| Refusal {
                error,
                room_id,
                client_msg_id,
            })
        }
        Err(error) => Err(refuse_unparsable(text, &error)),
    }
}

/// Tells a frame that is not JSON from JSON of the wrong shape, echoing what can be read.
fn refuse_unparsable(text: &str, error: &serde_json::Error) -> Refusal {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Refusal {
            error: WsError::InvalidJson(error.to_string()),
            room_id: None,
            client_msg_id: None,
        };
    };
    let echo = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let detail = if value.is_object() {
        format!("bad field: {error}")
    } else {
        "a frame must be a JSON object".to_owned()
    };
    Refusal {
        error: WsError::InvalidMessage(detail),
        room_id: echo("roomId"),
        client_msg_id: echo("clientMsgId"),
    }
}

fn required<'a>(field: &'static str, value: &'a Option<Cow<'_, str>>) -> Result<&'a str, WsError> {
    value
        .as_deref()
        .ok_or_else(|| WsError::InvalidMessage(format!("{field} is required")))
}

impl RawFrame<'_> {
    fn validate(self) -> Result<ClientFrame, WsError> {
        let kind = required("type", &self.kind)?;
        if !matches!(kind, "ENTER" | "TALK" | "LEAVE") {
            return Err(WsError::InvalidMessage(format!(
                "unknown type {kind:?}: expected ENTER, TALK or LEAVE"
            )));
        }
        let room_id = RoomId::parse(required("roomId", &self.room_id)?)?;
        let sender = Sender::parse(required("sender", &self.sender)?)?;
        let action = match kind {
            "ENTER" => Action::Enter {
                last_seq: self.last_seq.map(seq_from_wire).transpose()?,
            },
            "TALK" => Action::Talk {
                message: MessageText::parse(required("message", &self.message)?)?,
            },
            _ => Action::Leave,
        };
        let client_msg_id = self
            .client_msg_id
            .as_deref()
            .map(ClientMsgId::parse)
            .transpose()?;
        Ok(ClientFrame {
            room_id,
            sender,
            client_msg_id,
            action,
        })
    }
}

fn seq_from_wire(raw: u64) -> Result<i64, WsError> {
    i64::try_from(raw).map_err(|_| WsError::InvalidMessage("lastSeq is out of range".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "3f2c5a8e-8d2b-4a63-9a43-3c0c8a1d2e4f";

    fn refusal(text: &str) -> Refusal {
        parse(text).expect_err("frame should be refused")
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
    fn an_enter_frame_carries_last_seq_and_its_client_msg_id() {
        let frame = parse(&format!(
            r#"{{"type":"ENTER","roomId":"{ROOM}","sender":"a","lastSeq":41,"clientMsgId":"e-1"}}"#
        ))
        .unwrap();
        assert_eq!(frame.action, Action::Enter { last_seq: Some(41) });
        assert_eq!(frame.client_msg_id.unwrap().into_string(), "e-1");
    }

    #[test]
    fn text_that_is_not_json_is_invalid_json() {
        assert_eq!(refusal("{nope").error.code(), "INVALID_JSON");
    }

    #[test]
    fn json_that_is_not_an_object_is_an_invalid_message() {
        assert_eq!(refusal("[1,2]").error.code(), "INVALID_MESSAGE");
        assert_eq!(refusal("42").error.code(), "INVALID_MESSAGE");
    }

    #[test]
    fn an_unknown_type_is_an_invalid_message_that_echoes_ids() {
        let refused = refusal(&format!(
            r#"{{"type":"SHOUT","roomId":"{ROOM}","sender":"a","clientMsgId":"c-9"}}"#
        ));
        assert_eq!(refused.error.code(), "INVALID_MESSAGE");
        assert_eq!(refused.room_id.as_deref(), Some(ROOM));
        assert_eq!(refused.client_msg_id.as_deref(), Some("c-9"));
    }

    #[test]
    fn a_field_of_the_wrong_type_is_an_invalid_message_that_still_echoes_ids() {
        let refused = refusal(&format!(
            r#"{{"type":"TALK","roomId":"{ROOM}","sender":7,"message":"x","clientMsgId":"c-2"}}"#
        ));
        assert_eq!(refused.error.code(), "INVALID_MESSAGE");
        assert_eq!(refused.client_msg_id.as_deref(), Some("c-2"));
    }

    #[test]
    fn a_room_id_that_is_not_a_uuid_is_an_invalid_message() {
        let refused = refusal(r#"{"type":"ENTER","roomId":"nope","sender":"a"}"#);
        assert_eq!(refused.error.code(), "INVALID_MESSAGE");
        assert_eq!(refused.room_id.as_deref(), Some("nope"));
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
    fn a_talk_without_message_and_a_negative_last_seq_are_invalid_messages() {
        let talk = format!(r#"{{"type":"TALK","roomId":"{ROOM}","sender":"a"}}"#);
        assert_eq!(refusal(&talk).error.code(), "INVALID_MESSAGE");
        let enter = format!(r#"{{"type":"ENTER","roomId":"{ROOM}","sender":"a","lastSeq":-1}}"#);
        assert_eq!(refusal(&enter).error.code(), "INVALID_MESSAGE");
    }

    #[test]
    fn an_error_frame_serializes_to_the_contract_shape() {
        let refused = refusal(&format!(r#"{{"type":"NOPE","roomId":"{ROOM}"}}"#));
        let json: serde_json::Value = serde_json::from_str(&refused.frame().unwrap()).unwrap();
        assert_eq!(json["type"], "ERROR");
        assert_eq!(json["code"], "INVALID_MESSAGE");
        assert_eq!(json["roomId"], ROOM);
        assert!(json.get("clientMsgId").is_none());
    }
}
