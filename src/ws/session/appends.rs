//! What a session asks of the writer: a chat frame planned against its rooms, queued without
//! waiting (or parked while the writer's queue is full), and the outcome when it settles.

use std::future::Future;
use std::pin::Pin;

use super::{Dialect, Session};
use crate::domain::{EventKind, RoomId};
use crate::writer::{AppendError, AppendSlot, Stored, WriteError};
use crate::ws::close::End;
use crate::ws::in_flight::Settled;
use crate::ws::intake::{Append, Effect, plan};
use crate::ws::protocol::{ClientFrame, Echo, Refusal, WsError, ack_frame};

/// A frame's append waiting for room in the writer's queue. The wait is kept across turns of
/// the loop, so the session keeps its place in the writer's line.
pub struct Parked {
    append: Append,
    echo: Echo,
    room: Pin<Box<dyn Future<Output = Result<AppendSlot, WriteError>>>>,
}

/// Room in the writer's queue for the parked append; never resolves while none is parked.
pub async fn room_for(parked: &mut Option<Parked>) -> Result<AppendSlot, WriteError> {
    match parked {
        Some(parked) => (&mut parked.room).await,
        None => std::future::pending().await,
    }
}

impl Session {
    /// Does what a valid chat frame asks: an append, nothing (an ENTER into a room it is in;
    /// its receipt at once), or a refusal.
    pub(super) fn dispatch(&mut self, frame: ClientFrame, echo: Echo) -> Result<(), End> {
        match plan(frame, self.presence.table_mut(), &self.speaker) {
            Ok(Some(append)) => self.queue_or_park(append, echo),
            Ok(None) => {
                self.receipt(echo.receipt);
                Ok(())
            }
            Err(error) => self.refuse(Refusal { error, echo }),
        }
    }

    fn queue_or_park(&mut self, append: Append, echo: Echo) -> Result<(), End> {
        match self.state.writer.try_reserve() {
            Ok(Some(slot)) => self.queue(slot, append, echo),
            Ok(None) => {
                let writer = self.state.writer.clone();
                let room = Box::pin(async move { writer.reserve().await });
                self.parked = Some(Parked { append, echo, room });
            }
            Err(_) => return Err(End::Unavailable),
        }
        Ok(())
    }

    pub(super) fn unpark(&mut self, slot: Result<AppendSlot, WriteError>) -> Result<(), End> {
        let slot = slot.map_err(|_| End::Unavailable)?;
        if let Some(Parked { append, echo, .. }) = self.parked.take() {
            self.queue(slot, append, echo);
        }
        Ok(())
    }

    /// Queues an append; its outcome arrives in the select loop.
    fn queue(&mut self, slot: AppendSlot, append: Append, echo: Echo) {
        let Append { event, effect } = append;
        let (kind, room_id) = (event.kind, event.room_id);
        match effect {
            Effect::Join {
                sender,
                resume_after,
                echo,
            } => self.presence.join(room_id, sender, resume_after, echo),
            Effect::Leave => self.presence.table_mut().leaving(room_id),
            Effect::None => {}
        }
        self.in_flight.push(kind, room_id, echo, slot.append(event));
    }

    /// A stored TALK reaches this session through its queue (or, echo off, as an `ACK`); an
    /// ENTER or LEAVE settles the room's phase; a failure is reported to the client.
    pub(super) fn settle(&mut self, settled: Settled) -> Result<(), End> {
        let Settled {
            kind,
            room_id,
            echo,
            outcome,
        } = settled;
        let error = match outcome {
            Ok(stored) => {
                self.stored(kind, room_id, &stored, &echo);
                self.receipt(echo.receipt);
                return Ok(());
            }
            Err(AppendError::RoomNotFound(room_id)) => WsError::RoomNotFound(room_id),
            Err(AppendError::Unavailable) => WsError::Unavailable,
            // Its LEAVE was stored already, when its instance was taken for dead: it has left.
            Err(AppendError::NotMember(room_id)) => {
                self.presence.remove(room_id);
                self.receipt(echo.receipt);
                return Ok(());
            }
        };
        match kind {
            EventKind::Enter => self.presence.remove(room_id),
            EventKind::Leave => self.presence.table_mut().stay(room_id),
            EventKind::Talk => {}
        }
        self.refuse(Refusal { error, echo })
    }

    fn stored(&mut self, kind: EventKind, room_id: RoomId, stored: &Stored, echo: &Echo) {
        let table = self.presence.table_mut();
        match kind {
            EventKind::Enter => table.entered(room_id, stored.seq),
            EventKind::Leave => table.left(room_id, stored.seq),
            EventKind::Talk => {
                if table.talked(room_id, stored.seq) {
                    let id = echo.client_msg_id.as_deref();
                    self.socket.text(ack_frame(room_id, stored, id));
                }
                return;
            }
        }
        self.done_with(room_id);
    }

    /// Answers a STOMP frame's `receipt` (nothing asks for one on `/ws/chat`).
    pub(super) fn receipt(&mut self, receipt: Option<String>) {
        if let (Dialect::Stomp(stomp), Some(id)) = (&self.dialect, receipt) {
            self.socket.text(stomp.receipt(&id));
        }
    }
}
