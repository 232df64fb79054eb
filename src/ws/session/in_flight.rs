//! What a session has queued with the writer (appends, read markers) and not yet heard back
//! about, in the order it sent them.

use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

use crate::domain::{EventKind, RoomId};
use crate::writer::{AppendError, AppendReply, Appended, ReadReply};
use crate::ws::dialect::chat::Echo;

/// What became of one request to the writer, with what a refusal of it must echo.
pub struct Settled {
    pub room_id: RoomId,
    pub echo: Echo,
    pub outcome: Outcome,
}

pub enum Outcome {
    Append {
        kind: EventKind,
        result: Result<Appended, AppendError>,
    },
    Read(Result<(), AppendError>),
}

#[derive(Default)]
pub struct InFlight {
    pending: FuturesOrdered<Pin<Box<dyn Future<Output = Settled>>>>,
}

impl InFlight {
    pub fn push(&mut self, kind: EventKind, room_id: RoomId, echo: Echo, reply: AppendReply) {
        self.pending.push_back(Box::pin(async move {
            let result = reply.await.unwrap_or(Err(AppendError::Unavailable));
            Settled {
                room_id,
                echo,
                outcome: Outcome::Append { kind, result },
            }
        }));
    }

    pub fn push_read(&mut self, room_id: RoomId, echo: Echo, reply: ReadReply) {
        self.pending.push_back(Box::pin(async move {
            let result = reply.await.unwrap_or(Err(AppendError::Unavailable));
            Settled {
                room_id,
                echo,
                outcome: Outcome::Read(result),
            }
        }));
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next outcome, in the order they were queued; None when none is pending.
    pub async fn next(&mut self) -> Option<Settled> {
        self.pending.next().await
    }
}
