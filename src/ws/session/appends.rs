//! What a session asks of the writer: a chat frame planned against its rooms, queued without
//! waiting (or parked while the writer's queue is full), and the outcome when it settles. A
//! TYPING notice needs no writer: it goes to the room's other sessions at once.

use std::future::Future;
use std::pin::Pin;

use super::in_flight::{Outcome, Settled};
use super::intake::{Append, Effect, Plan, plan};
use super::{Dialect, Session};
use crate::domain::{Event, EventKind, ReadMarker, RoomId};
use crate::metrics::Stage;
use crate::writer::{AppendError, AppendSlot, Appended, Stored, WriteError};
use crate::ws::dialect::chat::{ClientFrame, Echo, Refusal, WsError, ack_frame, duplicate_frame};
use crate::ws::transport::close::End;

/// What a frame asks the writer to store.
pub enum Job {
    Append(Append),
    Read(ReadMarker),
}

/// A frame's job waiting for room in the writer's queue. The wait is kept across turns of the
/// loop, so the session keeps its place in the writer's line.
pub struct Parked {
    job: Job,
    echo: Echo,
    room: Pin<Box<dyn Future<Output = Result<AppendSlot, WriteError>>>>,
}

/// Room in the writer's queue for the parked job; never resolves while none is parked.
pub async fn room_for(parked: &mut Option<Box<Parked>>) -> Result<AppendSlot, WriteError> {
    match parked {
        Some(parked) => (&mut parked.room).await,
        None => std::future::pending().await,
    }
}

impl Session {
    /// Does what a valid chat frame asks: an append or a read marker for the writer, a notice
    /// sent at once, nothing (an ENTER into a room it is in; its receipt at once), or a
    /// refusal.
    pub(super) fn dispatch(&mut self, frame: ClientFrame, echo: Echo) -> Result<(), End> {
        match plan(frame, self.presence.table_mut(), &self.speaker) {
            Ok(Plan::Append(append)) => self.queue_or_park(Job::Append(append), echo),
            Ok(Plan::Read(marker)) => self.queue_or_park(Job::Read(marker), echo),
            Ok(Plan::Notice(notice)) => {
                self.state.fanout.notify(&notice, Some(self.id));
                self.answer_receipt(echo.receipt)
            }
            Ok(Plan::Nothing) => self.answer_receipt(echo.receipt),
            Err(error) => self.refuse(Refusal { error, echo }),
        }
    }

    fn queue_or_park(&mut self, job: Job, echo: Echo) -> Result<(), End> {
        match self.state.writer.try_reserve() {
            Ok(Some(slot)) => self.queue(slot, job, echo),
            Ok(None) => {
                let writer = self.state.writer.clone();
                let room = Box::pin(async move { writer.reserve().await });
                self.parked = Some(Box::new(Parked { job, echo, room }));
            }
            Err(_) => return Err(End::Unavailable),
        }
        Ok(())
    }

    pub(super) fn unpark(&mut self, slot: Result<AppendSlot, WriteError>) -> Result<(), End> {
        let slot = slot.map_err(|_| End::Unavailable)?;
        if let Some(parked) = self.parked.take() {
            let Parked { job, echo, .. } = *parked;
            self.queue(slot, job, echo);
        }
        Ok(())
    }

    /// Queues a job; its outcome arrives in the select loop.
    fn queue(&mut self, slot: AppendSlot, job: Job, echo: Echo) {
        let Append { event, effect } = match job {
            Job::Append(append) => append,
            Job::Read(marker) => {
                let room_id = marker.room_id;
                self.in_flight.push_read(room_id, echo, slot.read(marker));
                return;
            }
        };
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
        if let Some(read) = self.frame_read {
            self.state.metrics.stage(Stage::Queued, read);
        }
    }

    /// A stored TALK reaches this session through its queue (or, echo off, as an `ACK`); a
    /// resent one comes back as the first; an ENTER or LEAVE settles the room's phase; a
    /// failure is reported to the client.
    pub(super) fn settle(&mut self, settled: Settled) -> Result<(), End> {
        let Settled {
            room_id,
            echo,
            outcome,
        } = settled;
        match outcome {
            Outcome::Append { kind, result } => self.settle_append(kind, room_id, result, echo),
            Outcome::Read(Ok(())) => {
                self.receipt(echo.receipt);
                Ok(())
            }
            Outcome::Read(Err(_)) => self.refuse(Refusal {
                error: WsError::Unavailable,
                echo,
            }),
        }
    }

    fn settle_append(
        &mut self,
        kind: EventKind,
        room_id: RoomId,
        result: Result<Appended, AppendError>,
        echo: Echo,
    ) -> Result<(), End> {
        let error = match result {
            Ok(Appended::Stored(stored)) => {
                self.stored(kind, room_id, &stored, &echo);
                None
            }
            Ok(Appended::Duplicate(first)) => {
                self.resent(*first);
                None
            }
            // Its LEAVE was stored already, when its instance was taken for dead: it has left.
            Err(AppendError::NotMember(room_id)) => {
                self.presence.remove(room_id);
                None
            }
            Err(refused) => Some(WsError::from(refused)),
        };
        let Some(error) = error else {
            self.receipt(echo.receipt);
            return Ok(());
        };
        match kind {
            EventKind::Enter => self.presence.remove(room_id),
            EventKind::Leave => self.presence.table_mut().stay(room_id),
            _ => {}
        }
        self.refuse(Refusal { error, echo })
    }

    fn stored(&mut self, kind: EventKind, room_id: RoomId, stored: &Stored, echo: &Echo) {
        let table = self.presence.table_mut();
        match kind {
            EventKind::Enter => {
                table.entered(room_id, stored.seq);
                if let Some(standing) = stored.standing {
                    table.stand(room_id, standing, stored.seq);
                }
            }
            EventKind::Leave => table.left(room_id, stored.seq),
            EventKind::Talk => {
                if table.talked(room_id, stored.seq) {
                    let id = echo.client_msg_id.as_deref();
                    self.socket.text(ack_frame(room_id, stored, id));
                }
                return;
            }
            // A change comes back as its event, with or without echo: it is no TALK of its own.
            _ => return,
        }
        self.done_with(room_id);
    }

    /// Answers a STOMP frame's `receipt` (nothing asks for one on `/ws/chat`).
    pub(super) fn receipt(&mut self, receipt: Option<String>) {
        if let (Dialect::Stomp(stomp), Some(id)) = (&self.dialect, receipt) {
            self.socket.text(stomp.receipt(&id));
        }
    }

    /// Answers at once the `receipt` of a frame that just took effect, within what one
    /// message may get.
    pub(super) fn answer_receipt(&mut self, receipt: Option<String>) -> Result<(), End> {
        match (&self.dialect, receipt) {
            (Dialect::Stomp(stomp), Some(id)) => {
                let frame = stomp.receipt(&id);
                self.answer(frame)
            }
            _ => Ok(()),
        }
    }
}

/// A resent TALK's first copy, for the readers of the room it was sent to.
pub struct Resent {
    first: Box<Event>,
}

impl Session {
    /// The first copy of a resent TALK goes back to this session, marked as such, once its
    /// readers have had the first one itself (it may still be on its way to them); in a room
    /// entered with `"echo": false`, as an `ACK` at once.
    fn resent(&mut self, first: Event) {
        if !self.presence.table().echoes(first.room_id) {
            self.socket.text(duplicate_frame(&first, false));
            return;
        }
        self.resent.push(Resent {
            first: Box::new(first),
        });
        self.send_resent();
    }

    /// Sends each resent TALK whose room's readers have all had its first copy.
    pub(super) fn send_resent(&mut self) {
        if self.resent.is_empty() {
            return;
        }
        let mut waiting = Vec::new();
        for resent in std::mem::take(&mut self.resent) {
            let first = &resent.first;
            match self.presence.table().readers_past(first.room_id, first.seq) {
                Some(readers) => self.send_duplicate(first, &readers),
                None => waiting.push(resent),
            }
        }
        self.resent = waiting;
    }
}
