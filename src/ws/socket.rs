//! The write side of a connection. Every write races shutdown and the slow-consumer signal, so
//! a client that stops reading can never pin its session; closing is the one bounded exception.

use std::future::Future;
use std::time::Duration;

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseReason, Closed};
use bytestring::ByteString;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::close::End;

/// How long closing waits for the close frame to be written and for the client's own close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Socket {
    ws: actix_ws::Session,
    slow: CancellationToken,
    shutdown: CancellationToken,
}

impl Socket {
    pub fn new(
        ws: actix_ws::Session,
        slow: CancellationToken,
        shutdown: CancellationToken,
    ) -> Self {
        Self { ws, slow, shutdown }
    }

    pub async fn send(&mut self, frame: ByteString) -> Result<(), End> {
        guarded(self.ws.text(frame), &self.slow, &self.shutdown).await
    }

    pub async fn ping(&mut self) -> Result<(), End> {
        guarded(self.ws.ping(b""), &self.slow, &self.shutdown).await
    }

    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), End> {
        guarded(self.ws.pong(payload), &self.slow, &self.shutdown).await
    }

    /// Sends the close frame and, given the stream, reads until the client answers with its
    /// own (the closing handshake), so the connection can be dropped as soon as the session
    /// ends. Bounded: a client that never reads or never answers costs at most
    /// [`CLOSE_TIMEOUT`].
    pub async fn close(self, reason: CloseReason, answer: Option<&mut AggregatedMessageStream>) {
        let handshake = async {
            if self.ws.close(Some(reason)).await.is_err() {
                return;
            }
            let Some(stream) = answer else { return };
            while let Some(Ok(frame)) = stream.next().await {
                if let AggregatedMessage::Close(_) = frame {
                    return;
                }
            }
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, handshake)
            .await
            .is_err()
        {
            tracing::debug!("the client did not complete the closing handshake in time");
        }
    }
}

/// Waits for a socket write unless the session must end first.
async fn guarded(
    write: impl Future<Output = Result<(), Closed>>,
    slow: &CancellationToken,
    shutdown: &CancellationToken,
) -> Result<(), End> {
    tokio::select! {
        biased;
        () = shutdown.cancelled() => Err(End::Shutdown),
        () = slow.cancelled() => Err(End::Slow),
        written = write => written.map_err(|_| End::Gone),
    }
}
