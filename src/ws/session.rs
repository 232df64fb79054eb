//! One WebSocket connection: a single `select!` loop over shutdown, the slow-consumer signal,
//! settled appends, queued room events, client frames and the heartbeat, with cleanup once
//! after the loop. Every socket write is raced against shutdown and the slow signal, so a
//! client that stops reading can never pin this task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{AggregatedMessage, AggregatedMessageStream};
use bytestring::ByteString;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};
use tokio_util::sync::CancellationToken;

use super::close::{End, guarded};
use super::membership::{Flow, Membership, Pending};
use super::protocol::{ClientFrame, Refusal, WsError, parse};
use crate::domain::{NewEvent, RoomId};
use crate::hub::{MemberHandle, Outbound, SessionId};
use crate::state::AppState;

/// Appends a session may have in flight before it stops reading frames (backpressure).
const MAX_IN_FLIGHT: usize = 256;
/// How long cleanup waits for the close frame to be written and for final LEAVEs to be stored.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Session {
    pub(super) id: SessionId,
    pub(super) ws: actix_ws::Session,
    pub(super) state: Arc<AppState>,
    pub(super) rooms: HashMap<RoomId, Membership>,
    pub(super) member: MemberHandle,
    pub(super) slow: CancellationToken,
    pub(super) shutdown: CancellationToken,
    pub(super) limiter: Option<DefaultDirectRateLimiter>,
    pub(super) pending: FuturesOrdered<Pending>,
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

    pub(super) async fn send(&mut self, frame: ByteString) -> Result<(), End> {
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
            Ok(frame) => frame,
        };
        let (room_id, client_msg_id) = frame.echo_ids();
        let outcome = if limited {
            Err(Flow::Refuse(WsError::RateLimited))
        } else {
            self.dispatch(frame).await
        };
        match outcome {
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

    pub(super) async fn refuse(&mut self, refusal: Refusal) -> Result<(), End> {
        self.state.metrics.ws_error(refusal.error.code());
        match refusal.frame() {
            Some(frame) => self.send(frame).await,
            None => Ok(()),
        }
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
