//! A `/ws/chat` text frame read into a [`ClientFrame`] in one pass, or refused with exactly why.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Action, Change, ClientFrame, Echo, Refusal, WsError};
use crate::domain::{ClientMsgId, Emoji, MessageText, RoomId, Sender, Seq};

/// The frame types a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Enter,
    Talk,
    Leave,
    Typing,
    Read,
    Edit,
    Delete,
    React,
    Unreact,
}

/// Each frame type, as the contract spells it.
const TYPES: [(&str, Type); 9] = [
    ("ENTER", Type::Enter),
    ("TALK", Type::Talk),
    ("LEAVE", Type::Leave),
    ("TYPING", Type::Typing),
    ("READ", Type::Read),
    ("EDIT", Type::Edit),
    ("DELETE", Type::Delete),
    ("REACT", Type::React),
    ("UNREACT", Type::Unreact),
];

/// The fields of a client frame, each kept as its raw JSON: the frame is read in one pass, and
/// a field of the wrong type is reported by name instead of failing the whole frame.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    room_id: Option<&'a RawValue>,
    #[serde(borrow)]
    sender: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow)]
    client_msg_id: Option<&'a RawValue>,
    #[serde(borrow)]
    last_seq: Option<&'a RawValue>,
    #[serde(borrow)]
    echo: Option<&'a RawValue>,
    #[serde(borrow)]
    seq: Option<&'a RawValue>,
    #[serde(borrow)]
    target_seq: Option<&'a RawValue>,
    #[serde(borrow)]
    emoji: Option<&'a RawValue>,
    #[serde(borrow)]
    reply_to: Option<&'a RawValue>,
}

/// Parses one text frame, or says exactly why it was refused.
pub fn parse(text: &str) -> Result<ClientFrame, Refusal> {
    let raw: RawFrame = serde_json::from_str(text).map_err(|error| Refusal {
        error: unreadable(text, &error),
        echo: Echo::default(),
    })?;
    let echo = Echo {
        room_id: raw.room_id.and_then(string).map(Cow::into_owned),
        client_msg_id: raw.client_msg_id.and_then(string).map(Cow::into_owned),
        receipt: None,
    };
    raw.validate().map_err(|error| Refusal { error, echo })
}

/// Tells text that is not JSON from JSON that is not a frame. Reading a frame stops at the
/// first value of the wrong shape (`9U8...` fails as "a number, not an object" before its
/// tail is read), so text that fails that way is read once more as any JSON value to tell.
fn unreadable(text: &str, error: &serde_json::Error) -> WsError {
    if !error.is_data() {
        return WsError::InvalidJson(error.to_string());
    }
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return WsError::InvalidJson(error.to_string());
    }
    if text.trim_start().starts_with('{') {
        return WsError::InvalidMessage(format!("bad frame: {error}"));
    }
    WsError::InvalidMessage("a frame must be a JSON object".to_owned())
}

/// A frame's `type`, one of those the contract lists.
fn frame_type(kind: &str) -> Result<Type, WsError> {
    TYPES
        .into_iter()
        .find_map(|(name, known)| (name == kind).then_some(known))
        .ok_or_else(|| {
            let known: Vec<&str> = TYPES.iter().map(|(name, _)| *name).collect();
            WsError::InvalidMessage(format!("unknown type {kind:?}: expected one of {known:?}"))
        })
}

/// A JSON string's value, borrowed when it has no escapes.
fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<&str>(raw.get())
        .map(Cow::Borrowed)
        .or_else(|_| serde_json::from_str::<String>(raw.get()).map(Cow::Owned))
        .ok()
}

fn optional<'a>(field: &str, raw: Option<&'a RawValue>) -> Result<Option<Cow<'a, str>>, WsError> {
    raw.map(|raw| {
        string(raw).ok_or_else(|| WsError::InvalidMessage(format!("{field} must be a string")))
    })
    .transpose()
}

fn required<'a>(field: &str, raw: Option<&'a RawValue>) -> Result<Cow<'a, str>, WsError> {
    optional(field, raw)?.ok_or_else(|| missing(field))
}

fn missing(field: &str) -> WsError {
    WsError::InvalidMessage(format!("{field} is required"))
}

/// A seq a client sends (`lastSeq`, `seq`): a JSON integer from 0 to 2^63-1.
fn seq(field: &str, raw: &RawValue) -> Result<Seq, WsError> {
    serde_json::from_str::<u64>(raw.get())
        .ok()
        .and_then(Seq::from_wire)
        .ok_or_else(|| {
            WsError::InvalidMessage(format!("{field} must be an integer from 0 to {}", Seq::MAX))
        })
}

fn echo(raw: &RawValue) -> Result<bool, WsError> {
    serde_json::from_str::<bool>(raw.get())
        .map_err(|_| WsError::InvalidMessage("echo must be true or false".to_owned()))
}

impl RawFrame<'_> {
    fn validate(self) -> Result<ClientFrame, WsError> {
        let kind = frame_type(&required("type", self.kind)?)?;
        let room_id = RoomId::parse(&required("roomId", self.room_id)?)?;
        let sender = Sender::parse(&required("sender", self.sender)?)?;
        let client_msg_id = optional("clientMsgId", self.client_msg_id)?
            .map(|id| ClientMsgId::parse(&id))
            .transpose()?;
        Ok(ClientFrame {
            room_id,
            sender,
            client_msg_id,
            action: self.action(kind)?,
        })
    }

    /// What a frame of this type asks for, from the fields that type reads.
    fn action(&self, kind: Type) -> Result<Action, WsError> {
        Ok(match kind {
            Type::Enter => Action::Enter {
                last_seq: self.last_seq.map(|raw| seq("lastSeq", raw)).transpose()?,
                echo: self.echo.map(echo).transpose()?,
            },
            Type::Talk => Action::Talk {
                message: self.message()?,
                reply_to: self.reply_to.map(|raw| seq("replyTo", raw)).transpose()?,
            },
            Type::Leave => Action::Leave,
            Type::Typing => Action::Typing,
            Type::Read => Action::Read {
                seq: seq("seq", self.seq.ok_or_else(|| missing("seq"))?)?,
            },
            Type::Edit => Action::Change(Change::Edit {
                target_seq: self.target_seq()?,
                message: self.message()?,
            }),
            Type::Delete => Action::Change(Change::Delete {
                target_seq: self.target_seq()?,
            }),
            Type::React => Action::Change(Change::React {
                target_seq: self.target_seq()?,
                emoji: self.emoji()?,
            }),
            Type::Unreact => Action::Change(Change::Unreact {
                target_seq: self.target_seq()?,
                emoji: self.emoji()?,
            }),
        })
    }

    fn message(&self) -> Result<MessageText, WsError> {
        Ok(MessageText::parse(&required("message", self.message)?)?)
    }

    fn target_seq(&self) -> Result<Seq, WsError> {
        seq(
            "targetSeq",
            self.target_seq.ok_or_else(|| missing("targetSeq"))?,
        )
    }

    fn emoji(&self) -> Result<Emoji, WsError> {
        Ok(Emoji::parse(&required("emoji", self.emoji)?)?)
    }
}
