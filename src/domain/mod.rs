//! Validated domain types. Each `parse` is the only way in, so a value of one of these types
//! is known to satisfy the contract's rules wherever it travels (hub, store, wire).

mod change;
mod event;
mod event_json;
mod instance;
mod moderation;
mod new_event;
mod notice;
mod room;
mod seq;
mod standing;
mod text;
mod time;
mod webhook;

pub use change::{Authority, Reaction};
pub use event::{Event, EventKind};
pub use instance::{InstanceId, SessionId};
pub use moderation::{Action, Moderation, Reason, Removal, Role, Visibility};
pub use new_event::NewEvent;
pub use notice::{Notice, ReadMarker};
pub use room::{NewRoom, Retention, RoomId, RoomName};
pub use seq::Seq;
pub use standing::{Sanction, Standing};
pub use text::{ClientMsgId, Emoji, MessageText, Sender};
pub use time::Timestamp;
pub use webhook::{EventFilter, MAX_WEBHOOK_ROOMS, WebhookId, WebhookUrl, is_public};

/// Why a value was refused; the message is written for the client that sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} must be at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} is not a UUID")]
    NotUuid { field: &'static str },
    #[error("{field} must not contain spaces or control characters")]
    Spaced { field: &'static str },
    #[error("{field} must be {range}")]
    OutOfRange {
        field: &'static str,
        range: &'static str,
    },
}
