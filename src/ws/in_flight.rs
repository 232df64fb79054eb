//! The appends a session has queued and not yet heard back about, in the order it sent them.

use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

use super::protocol::Echo;
use crate::domain::{EventKind, RoomId};
use crate::writer::{AppendError, AppendReply, Stored};

/// The outcome of one append, with what a refusal of it must echo.
pub struct Settled {
    pub kind: EventKind,
    pub room_id: RoomId,
    pub echo: Echo,
    pub outcome: Result<Stored, AppendError>,
}

#[derive(Default)]
pub struct InFlight {
    pending: FuturesOrdered<Pin<Box<dyn Future<Output = Settled>>>>,
}

impl InFlight {
    pub fn push(&mut self, kind: EventKind, room_id: RoomId, echo: Echo, reply: AppendReply) {
        self.pending.push_back(Box::pin(async move {
            let outcome = reply.await.unwrap_or(Err(AppendError::Unavailable));
            Settled {
                kind,
                room_id,
                echo,
                outcome,
            }
        }));
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next outcome, in the order the appends were queued; None when none is pending.
    pub async fn next(&mut self) -> Option<Settled> {
        self.pending.next().await
    }
}
