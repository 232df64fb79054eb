//! How a session ends: the reasons, their close frames, and the guard that lets a pending
//! socket write lose to shutdown or the slow-consumer signal.

use std::future::Future;

use actix_ws::{CloseCode, CloseReason, Closed};
use tokio_util::sync::CancellationToken;

/// Why the loop ended; decides the close frame.
#[derive(Debug)]
pub(super) enum End {
    Shutdown,
    Slow,
    Binary,
    InvalidText,
    TooLarge,
    Protocol,
    Timeout,
    ClientClosed(Option<CloseReason>),
    Gone,
}

impl End {
    pub(super) fn close_reason(self, max_frame: usize) -> Option<CloseReason> {
        let (code, text) = match self {
            Self::ClientClosed(reason) => return Some(reason.unwrap_or(CloseCode::Normal.into())),
            Self::Gone => return None,
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
            Self::Timeout => (CloseCode::Policy, "no pong in time".to_owned()),
        };
        Some(CloseReason {
            code,
            description: Some(text),
        })
    }
}

/// Waits for a socket write unless the session must end first.
pub(super) async fn guarded(
    write: impl Future<Output = Result<(), Closed>>,
    slow: &CancellationToken,
    shutdown: &CancellationToken,
) -> Result<(), End> {
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => Err(End::Shutdown),
        _ = slow.cancelled() => Err(End::Slow),
        written = write => written.map_err(|_| End::Gone),
    }
}
