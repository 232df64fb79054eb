//! What a session does with each valid frame: enter (with resume), talk, leave; and how it
//! tracks the rooms it is in, so a replay and the live queue never disagree.

use std::future::Future;
use std::pin::Pin;

use super::close::End;
use super::protocol::{Action, ClientFrame, Refusal, WsError, encode};
use super::session::Session;
use crate::domain::{ClientMsgId, EventKind, NewEvent, RoomId, Sender};
use crate::hub::Outbound;
use crate::hub::sequencer::AppendError;
use crate::store::EventRange;

/// Events read from the store per query during a resume.
const REPLAY_PAGE: u32 = 500;

/// Whatever stops a frame's handling: a refusal for the client, or the end of the session.
pub(super) enum Flow {
    Refuse(WsError),
    End(End),
}

impl From<WsError> for Flow {
    fn from(error: WsError) -> Self {
        Self::Refuse(error)
    }
}

impl From<End> for Flow {
    fn from(end: End) -> Self {
        Self::End(end)
    }
}

/// A room this session is in: the sender it entered as, and the newest seq it has sent, so a
/// live event already sent by a replay is skipped (no duplicate) and none is missed (no gap).
pub(super) struct Membership {
    pub(super) sender: Sender,
    pub(super) delivered: i64,
}

/// An append this session is waiting on, with what to echo if it fails.
pub(super) struct Settled {
    kind: EventKind,
    room_id: RoomId,
    client_msg_id: Option<String>,
    outcome: Result<i64, AppendError>,
}

pub(super) type Pending = Pin<Box<dyn Future<Output = Settled>>>;

impl Session {
    pub(super) async fn dispatch(&mut self, frame: ClientFrame) -> Result<(), Flow> {
        let ClientFrame {
            room_id,
            sender,
            client_msg_id,
            action,
        } = frame;
        let client_msg_id = client_msg_id.map(ClientMsgId::into_string);
        match action {
            Action::Enter { last_seq } => {
                self.enter(room_id, sender, last_seq, client_msg_id).await
            }
            Action::Talk { message } => {
                self.entered_as(room_id, &sender, "TALK")?;
                let event = NewEvent::talk(room_id, sender, message).correlated(client_msg_id);
                self.submit(event).await
            }
            Action::Leave => {
                self.entered_as(room_id, &sender, "LEAVE")?;
                self.detach(room_id);
                let event = NewEvent::leave(room_id, sender).correlated(client_msg_id);
                self.submit(event).await
            }
        }
    }

    /// Checks that this session is in the room under this sender.
    fn entered_as(
        &self,
        room_id: RoomId,
        sender: &Sender,
        action: &'static str,
    ) -> Result<(), WsError> {
        let membership = self
            .rooms
            .get(&room_id)
            .ok_or(WsError::NotInRoom(room_id, action))?;
        if membership.sender != *sender {
            return Err(WsError::SenderMismatch {
                room_id,
                entered: membership.sender.as_str().to_owned(),
            });
        }
        Ok(())
    }

    async fn enter(
        &mut self,
        room_id: RoomId,
        sender: Sender,
        last_seq: Option<i64>,
        client_msg_id: Option<String>,
    ) -> Result<(), Flow> {
        if let Some(membership) = self.rooms.get(&room_id) {
            self.entered_as(room_id, &sender, "ENTER")?;
            if let Some(after) = last_seq {
                let up_to = membership.delivered;
                self.replay(room_id, after, up_to + 1).await?;
            }
            return Ok(());
        }
        match self.state.store.room(room_id).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(WsError::RoomNotFound(room_id).into()),
            Err(error) => {
                tracing::error!(%error, "reading a room failed");
                return Err(WsError::Unavailable.into());
            }
        }
        // Catch up from the store first, then join and read once more: an event stored in
        // between is in that last read, in the queue, or both (and then skipped by seq).
        let mut delivered = match last_seq {
            Some(after) => self.replay(room_id, after, i64::MAX).await?,
            None => 0,
        };
        self.state.hub.join(room_id, self.id, self.member.clone());
        if last_seq.is_some() {
            delivered = self.replay(room_id, delivered, i64::MAX).await?;
        }
        let membership = Membership {
            sender: sender.clone(),
            delivered,
        };
        self.rooms.insert(room_id, membership);
        let event = NewEvent::enter(room_id, sender).correlated(client_msg_id);
        self.submit(event).await
    }

    /// Sends stored events with `after < seq < before`, page by page; returns the last seq sent
    /// (or `after` when there was none).
    async fn replay(&mut self, room_id: RoomId, after: i64, before: i64) -> Result<i64, Flow> {
        let mut cursor = after;
        loop {
            let range = EventRange::Forward {
                after: cursor,
                before,
                limit: REPLAY_PAGE,
            };
            let page = self
                .state
                .store
                .events(room_id, range)
                .await
                .map_err(|error| {
                    tracing::error!(%error, "reading history for a resume failed");
                    WsError::Unavailable
                })?;
            let complete = page.len() < REPLAY_PAGE as usize;
            for event in page {
                cursor = event.seq;
                if let Some(frame) = encode(&event) {
                    self.send(frame).await?;
                    self.state.metrics.events_out.inc();
                }
            }
            if complete {
                return Ok(cursor);
            }
        }
    }

    fn detach(&mut self, room_id: RoomId) {
        self.rooms.remove(&room_id);
        self.state.hub.leave(room_id, self.id);
    }

    /// Queues an append in order and waits for its outcome in the select loop.
    pub(super) async fn submit(&mut self, event: NewEvent) -> Result<(), Flow> {
        let (kind, room_id) = (event.kind, event.room_id);
        let client_msg_id = event.client_msg_id.clone();
        let reply = self
            .state
            .sequencer
            .submit(event)
            .await
            .map_err(|_| WsError::Unavailable)?;
        self.pending.push_back(Box::pin(async move {
            Settled {
                kind,
                room_id,
                client_msg_id,
                outcome: reply.await.unwrap_or(Err(AppendError::Unavailable)),
            }
        }));
        Ok(())
    }

    /// A stored event reaches this session through its queue; only failures need work here.
    pub(super) async fn settle(&mut self, settled: Settled) -> Result<(), End> {
        let error = match settled.outcome {
            Ok(_) => return Ok(()),
            Err(_) if settled.kind == EventKind::Leave => return Ok(()),
            Err(AppendError::RoomNotFound(room_id)) => WsError::RoomNotFound(room_id),
            Err(AppendError::Unavailable) => WsError::Unavailable,
        };
        if settled.kind == EventKind::Enter {
            self.detach(settled.room_id);
        }
        self.refuse(Refusal {
            error,
            room_id: Some(settled.room_id.to_string()),
            client_msg_id: settled.client_msg_id,
        })
        .await
    }

    pub(super) async fn forward(&mut self, item: Outbound) -> Result<(), End> {
        match item {
            Outbound::Event {
                room_id,
                seq,
                frame,
            } => {
                let Some(membership) = self.rooms.get_mut(&room_id) else {
                    return Ok(());
                };
                if seq <= membership.delivered {
                    return Ok(());
                }
                membership.delivered = seq;
                self.send(frame).await?;
                self.state.metrics.events_out.inc();
            }
            Outbound::Closed { room_id, frame } => {
                if self.rooms.remove(&room_id).is_some() {
                    self.send(frame).await?;
                }
            }
        }
        Ok(())
    }
}
