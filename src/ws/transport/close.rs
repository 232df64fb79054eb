//! How a session ends: the reasons, and the close frame each one sends.

use actix_http::ws::{CloseCode, CloseReason};

/// Why the loop ended; decides the close frame.
#[derive(Debug)]
pub enum End {
    Shutdown,
    Slow,
    Binary,
    InvalidText,
    TooLarge,
    Protocol,
    Timeout,
    /// The token the session was opened with expired.
    Expired,
    /// The other instances took this one for dead and stored the session's LEAVEs.
    Evicted,
    /// Storage could not take or give this session's events.
    Unavailable,
    ClientClosed(Option<CloseReason>),
    Gone,
    /// A STOMP client sent DISCONNECT.
    Disconnected,
    /// A STOMP ERROR frame was sent: the connection cannot go on.
    StompError,
    /// One message asked for more refusals and receipts than one may get.
    Flood,
}

impl End {
    /// The close frame to send, or None when the client is gone already.
    pub fn close_reason(self, max_frame: usize) -> Option<CloseReason> {
        let (code, text) = match self {
            Self::ClientClosed(reason) => return Some(reason.unwrap_or(CloseCode::Normal.into())),
            Self::Gone => return None,
            Self::Disconnected => (CloseCode::Normal, "disconnected".to_owned()),
            Self::StompError => (
                CloseCode::Protocol,
                "STOMP error; see the ERROR frame".to_owned(),
            ),
            Self::Shutdown => (CloseCode::Away, "server is shutting down".to_owned()),
            Self::Slow => (
                CloseCode::Again,
                "too slow to read events; reconnect and ENTER with lastSeq".to_owned(),
            ),
            Self::Binary => (
                CloseCode::Unsupported,
                "binary frames are not accepted".to_owned(),
            ),
            Self::InvalidText => (
                CloseCode::Invalid,
                "text frame is not valid UTF-8".to_owned(),
            ),
            Self::TooLarge => (CloseCode::Size, format!("frame exceeds {max_frame} bytes")),
            Self::Protocol => (CloseCode::Protocol, "WebSocket protocol error".to_owned()),
            Self::Flood => (
                CloseCode::Policy,
                "one message asked for too many refusals".to_owned(),
            ),
            Self::Timeout => (
                CloseCode::Policy,
                "nothing from the client in time (no frame, pong or heart-beat)".to_owned(),
            ),
            Self::Evicted => (
                CloseCode::Restart,
                "this instance lost its place in the cluster; reconnect and ENTER with lastSeq"
                    .to_owned(),
            ),
            Self::Expired => (
                CloseCode::Policy,
                "the token expired; reconnect with a fresh one and ENTER with lastSeq".to_owned(),
            ),
            Self::Unavailable => (
                CloseCode::Error,
                "storage is unavailable; reconnect and ENTER with lastSeq".to_owned(),
            ),
        };
        Some((code, text).into())
    }
}
