//! One WebSocket connection: a single `select!` loop over shutdown, the slow-consumer signal,
//! settled appends, queued room events, client frames and the heartbeat, with cleanup once
//! after the loop. Every socket write is raced against shutdown and the slow signal, so a
//! client that stops reading can never pin this task.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Closed};
use bytestring::ByteString;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};
use tokio_util::sync::CancellationToken;

use super::protocol::{ClientFrame, Refusal, WsError, encode, parse};
use crate::domain::{EventKind, NewEvent, RoomId, Sender};
use crate::hub::sequencer::AppendError;
use crate::hub::{MemberHandle, Outbound, SessionId};
use crate::state::AppState;
use crate::store::EventRange;

/// Appends a session may have in flight before it stops reading frames (backpressure).
const MAX_IN_FLIGHT: usize = 256;
/// Events read from the store per query during a resume.
const REPLAY_PAGE: u32 = 500;
/// How long cleanup waits for the close frame to be written and for final LEAVEs to be stored.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the loop ended; decides the close frame.
#[derive(Debug)]
enum End {
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
    fn close_reason(self, max_frame: usize) -> Option<CloseReason> {
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

/// Whatever stops a frame's handling: a refusal for the client, or the end of the session.
enum Flow {
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
struct Membership {
    sender: Sender,
    delivered: i64,
}

/// An append this session is waiting on, with what to echo if it fails.
struct Settled {
    kind: EventKind,
    room_id: RoomId,
    client_msg_id: Option<String>,
    outcome: Result<i64, AppendError>,
}

type Pending = Pin<Box<dyn Future<Output = Settled>>>;

/// Waits for a socket write unless the session must end first.
async fn guarded(
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

pub struct Session {
    id: SessionId,
    ws: actix_ws::Session,
    state: Arc<AppState>,
    rooms: HashMap<RoomId, Membership>,
    member: MemberHandle,
    slow: CancellationToken,
    shutdown: CancellationToken,
    limiter: Option<DefaultDirectRateLimiter>,
    pending: FuturesOrdered<Pending>,
}

impl Session {
    /// Runs the connection to its end, then detaches it from every room.
    pub async fn run(
        state: Arc<AppState>,
        id: SessionId,
        ws: actix_ws::Session,
        stream: AggregatedMessageStream,
    ) {
        let settings = &state.settings;
        let (queue_tx, queue) = mpsc::channel(settings.session_queue);
        let slow = CancellationToken::new();
        let limiter = settings
            .ws_quota()
            .map(|(rate, burst)| RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)));
        let session = Self {
            id,
            ws,
            member: MemberHandle::new(queue_tx, slow.clone()),
            slow,
            shutdown: state.shutdown.clone(),
            rooms: HashMap::new(),
            limiter,
            pending: FuturesOrdered::new(),
            state,
        };
        session.state.metrics.connections.inc();
        let metrics = session.state.metrics.clone();
        session.serve(stream, queue).await;
        metrics.connections.dec();
    }

    async fn serve(
        mut self,
        mut stream: AggregatedMessageStream,
        mut queue: mpsc::Receiver<Outbound>,
    ) {
        tracing::info!("session opened");
        let end = self.select_loop(&mut stream, &mut queue).await;
        tracing::info!(?end, rooms = self.rooms.len(), "session closed");
        self.finish(end).await;
    }

    async fn select_loop(
        &mut self,
        stream: &mut AggregatedMessageStream,
        queue: &mut mpsc::Receiver<Outbound>,
    ) -> End {
        let mut heartbeat = interval(self.state.settings.ping_interval());
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        heartbeat.reset();
        let mut last_seen = Instant::now();
        let shutdown = self.shutdown.clone();
        let slow = self.slow.clone();
        loop {
            let step = tokio::select! {
                biased;
                _ = shutdown.cancelled() => Err(End::Shutdown),
                _ = slow.cancelled() => Err(End::Slow),
                Some(settled) = self.pending.next() => self.settle(settled).await,
                Some(item) = queue.recv() => self.forward(item).await,
                frame = stream.next(), if self.pending.len() < MAX_IN_FLIGHT => {
                    last_seen = Instant::now();
                    self.on_frame(frame).await
                }
                _ = heartbeat.tick() => self.heartbeat(last_seen).await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn heartbeat(&mut self, last_seen: Instant) -> Result<(), End> {
        if last_seen.elapsed() > self.state.settings.client_timeout() {
            return Err(End::Timeout);
        }
        guarded(self.ws.ping(b""), &self.slow, &self.shutdown).await
    }

    async fn send(&mut self, frame: ByteString) -> Result<(), End> {
        guarded(self.ws.text(frame), &self.slow, &self.shutdown).await
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<AggregatedMessage, actix_ws::ProtocolError>>,
    ) -> Result<(), End> {
        match frame {
            None => Err(End::Gone),
            Some(Err(actix_ws::ProtocolError::Overflow)) => Err(End::TooLarge),
            Some(Err(actix_ws::ProtocolError::Io(error)))
                if error.kind() == std::io::ErrorKind::InvalidData =>
            {
                Err(End::InvalidText)
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "protocol error");
                Err(End::Protocol)
            }
            Some(Ok(AggregatedMessage::Text(text))) => self.on_text(&text).await,
            Some(Ok(AggregatedMessage::Binary(_))) => Err(End::Binary),
            Some(Ok(AggregatedMessage::Ping(payload))) => {
                guarded(self.ws.pong(&payload), &self.slow, &self.shutdown).await
            }
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Ok(AggregatedMessage::Close(reason))) => Err(End::ClientClosed(reason)),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), End> {
        let parsed = parse(text);
        let kind = parsed.as_ref().map_or("INVALID", ClientFrame::kind);
        self.state.metrics.frame_in(kind);
        let limited = self.limiter.as_ref().is_some_and(|l| l.check().is_err());
        let frame = match parsed {
            Err(refusal) => return self.refuse(refusal).await,
            Ok(frame) if limited => {
                return self.refuse(refusal_for(&frame, WsError::RateLimited)).await;
            }
            Ok(frame) => frame,
        };
        let (room_id, client_msg_id) = echo_ids(&frame);
        match self.dispatch(frame).await {
            Ok(()) => Ok(()),
            Err(Flow::End(end)) => Err(end),
            Err(Flow::Refuse(error)) => {
                let refusal = Refusal {
                    error,
                    room_id: Some(room_id),
                    client_msg_id,
                };
                self.refuse(refusal).await
            }
        }
    }

    async fn refuse(&mut self, refusal: Refusal) -> Result<(), End> {
        self.state.metrics.ws_error(refusal.error.code());
        match refusal.frame() {
            Some(frame) => self.send(frame).await,
            None => Ok(()),
        }
    }

    async fn dispatch(&mut self, frame: ClientFrame) -> Result<(), Flow> {
        match frame {
            ClientFrame::Enter {
                room_id,
                sender,
                last_seq,
            } => self.enter(room_id, sender, last_seq).await,
            ClientFrame::Talk {
                room_id,
                sender,
                message,
                client_msg_id,
            } => {
                self.entered_as(room_id, &sender, "TALK")?;
                let event = NewEvent {
                    room_id,
                    kind: EventKind::Talk,
                    sender,
                    message: message.into_string(),
                    client_msg_id: client_msg_id.map(|id| id.into_string()),
                };
                self.submit(event).await
            }
            ClientFrame::Leave { room_id, sender } => {
                self.entered_as(room_id, &sender, "LEAVE")?;
                self.detach(room_id);
                self.submit(NewEvent::leave(room_id, sender)).await
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
        self.submit(NewEvent::enter(room_id, sender)).await
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
            if let Some(membership) = self.rooms.get_mut(&room_id) {
                membership.delivered = membership.delivered.max(cursor);
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
    async fn submit(&mut self, event: NewEvent) -> Result<(), Flow> {
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
    async fn settle(&mut self, settled: Settled) -> Result<(), End> {
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

    async fn forward(&mut self, item: Outbound) -> Result<(), End> {
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

    /// Leaves every room (a LEAVE each, however the connection ended), closes the socket and
    /// waits, bounded, until those LEAVEs are stored.
    async fn finish(mut self, end: End) {
        let rooms: Vec<(RoomId, Membership)> = self.rooms.drain().collect();
        for (room_id, membership) in rooms {
            self.state.hub.leave(room_id, self.id);
            if let Err(Flow::Refuse(error)) = self
                .submit(NewEvent::leave(room_id, membership.sender))
                .await
            {
                tracing::warn!(%error, %room_id, "could not store a LEAVE");
            }
        }
        if let Some(reason) = end.close_reason(self.state.settings.max_frame_bytes) {
            let _ = timeout(CLEANUP_TIMEOUT, self.ws.close(Some(reason))).await;
        }
        let drained = timeout(CLEANUP_TIMEOUT, async {
            while self.pending.next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::warn!("gave up waiting for final appends");
        }
    }
}

/// The ids a refusal of this frame echoes.
fn echo_ids(frame: &ClientFrame) -> (String, Option<String>) {
    match frame {
        ClientFrame::Talk {
            room_id,
            client_msg_id,
            ..
        } => (
            room_id.to_string(),
            client_msg_id.clone().map(|id| id.into_string()),
        ),
        ClientFrame::Enter { room_id, .. } | ClientFrame::Leave { room_id, .. } => {
            (room_id.to_string(), None)
        }
    }
}

fn refusal_for(frame: &ClientFrame, error: WsError) -> Refusal {
    let (room_id, client_msg_id) = echo_ids(frame);
    Refusal {
        error,
        room_id: Some(room_id),
        client_msg_id,
    }
}
