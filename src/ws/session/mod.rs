//! One WebSocket connection, whatever its framing: a single `select!` loop over shutdown, the
//! slow-consumer signal, the expiry of its token, this instance's eviction, settled appends,
//! queued room events, catch-up pages, room in the writer's queue, a subscription's room being
//! looked up, client frames and the heart-beats; then one cleanup. What a turn of the loop
//! sends goes out in one write.
//!
//! The limits, the queue, the rooms, the replays and the shutdown are the same for every
//! framing; what varies is the dialect ([`Dialect`]: `/ws/chat`'s JSON frames or STOMP's, each
//! over a plain WebSocket or SockJS), which turns what the client sends into the same appends
//! and subscriptions, and the events into frames ([`delivery`], [`subscriptions`]); [`inbound`] reads what the client
//! sends, [`timers`] keeps the session's clocks. When the writer's
//! queue is full, the append a frame asks for waits in the loop, which reads no further frame
//! meanwhile: a saturated writer slows down what sessions read, never what they deliver.

mod appends;
mod catch_up;
mod delivery;
mod heartbeat;
mod in_flight;
mod inbound;
mod intake;
mod opening;
mod rooms;
mod subscriptions;
mod timers;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytestring::ByteString;
use tokio::sync::watch;

use self::appends::{Parked, Resent};
use self::catch_up::{CatchUp, page_limit};
use self::heartbeat::Beat;
use self::in_flight::InFlight;
use self::intake::Speaker;
use self::opening::Open;
pub use self::opening::{Client, Dialect, Opening};
use self::rooms::Presence;
use self::subscriptions::{Disconnect, Looked};
use self::timers::{Timers, expired, tick};
use super::dialect::stomp::{Fatal, Stomp};
use super::transport::close::End;
use super::transport::websocket::{Incoming, Socket, Transport};
use crate::clients::frames::FrameLimit;
use crate::hub::{MemberQueue, SessionId};
use crate::identity::Identity;
use crate::metrics::Stage;
use crate::state::AppState;

/// Appends a session may have in flight before it stops reading frames (backpressure).
const MAX_IN_FLIGHT: usize = 256;

pub struct Session {
    state: Arc<AppState>,
    id: SessionId,
    socket: Socket,
    dialect: Dialect,
    transport: Transport,
    presence: Presence,
    queue: MemberQueue,
    limiter: FrameLimit,
    in_flight: InFlight,
    /// An append waiting for room in the writer's queue: seldom there, so boxed (300 bytes).
    parked: Option<Box<Parked>>,
    /// `/ws/chat` frames read and not acted on yet (a SockJS message may carry several);
    /// STOMP's wait in its decoder, read one at a time.
    pending: VecDeque<ByteString>,
    /// The last WebSocket message paid its place under the frame limit (Some: whether it
    /// was over it): its first frame needs no other, and a message that completes no frame
    /// has been counted all the same.
    prepaid: Option<bool>,
    /// Bytes of refusals and receipts sent for what the last WebSocket message carried: past
    /// `inbound::MAX_ANSWERS`, the session ends, so no message makes the server write many times its
    /// own size.
    answered: usize,
    /// When the last WebSocket message was read, for the `queued` stage of what it carried.
    frame_read: Option<Instant>,
    /// When the oldest queued event not yet written was fanned out, for the `written` stage.
    unwritten_since: Option<Instant>,
    /// Resent TALKs whose first copy goes back to the client once it has had it.
    resent: Vec<Resent>,
    catch_up: CatchUp,
    /// A STOMP subscription's room, being looked up.
    lookup: Option<Pin<Box<dyn Future<Output = Looked>>>>,
    /// A STOMP DISCONNECT, waiting for the appends asked before it.
    disconnect: Option<Disconnect>,
    timers: Timers,
    speaker: Speaker,
    identity: Option<Identity>,
    /// Changes when the other instances took this one for dead.
    evictions: watch::Receiver<u64>,
    _open: Open,
}

impl Session {
    /// Runs the connection to its end, then leaves every room and closes the socket.
    ///
    /// An async block, not an async fn: an async fn's arguments stay in its state beside the
    /// locals they are moved into, so the session and its stream would be held twice.
    pub fn run(
        state: Arc<AppState>,
        opening: Opening,
        stream: Incoming,
    ) -> impl Future<Output = ()> + use<> {
        let mut session = Self::new(state, opening);
        let mut stream = stream;
        async move {
            tracing::info!(
                dialect = session.dialect.name(),
                transport = session.transport.name(),
                "session opened"
            );
            let end = session.serve(&mut stream).await;
            tracing::info!(
                ?end,
                rooms = session.presence.table().len(),
                "session closed"
            );
            // Boxed: inline, its state (3 KiB) would be held by every session while it serves.
            Box::pin(session.finish(end, &mut stream)).await;
        }
    }

    async fn serve(&mut self, stream: &mut Incoming) -> End {
        let shutdown = self.state.shutdown.clone();
        let slow = self.queue.slow().clone();
        // SockJS's `o` goes out before anything arrives.
        if let Err(end) = self.socket_flush().await {
            return end;
        }
        loop {
            self.catch_up_if_behind();
            let reading = self.reading();
            let step = tokio::select! {
                biased;
                () = shutdown.cancelled() => Err(End::Shutdown),
                () = slow.cancelled() => Err(End::Slow),
                () = expired(&mut self.timers.expiry) => Err(End::Expired),
                () = expired(&mut self.timers.connect_by) => self.fatal(&Fatal::connect_timeout()),
                Ok(()) = self.evictions.changed() => Err(End::Evicted),
                Some(settled) = self.in_flight.next() => self.settle(settled),
                item = self.queue.recv() => self.forward_queued(item),
                (room_id, after, page) = self.catch_up.next() => self.replay(room_id, after, page),
                slot = appends::room_for(&mut self.parked) => self.unpark(slot),
                looked = subscriptions::looked_up(&mut self.lookup) => self.subscribed(looked),
                () = std::future::ready(()), if reading && self.has_pending() => {
                    self.act_on_pending()
                }
                frame = stream.next(), if reading && !self.has_pending() => {
                    self.on_frame(frame).and_then(|()| self.act_on_pending())
                }
                beat = self.timers.heartbeat.tick() => self.on_beat(beat, reading),
                () = tick(&mut self.timers.sockjs_beat) => {
                    self.socket.sockjs_heartbeat();
                    Ok(())
                }
                () = tick(&mut self.timers.stomp_beat) => {
                    self.socket.text(Stomp::heart_beat());
                    Ok(())
                }
            };
            let ended = step.and_then(|()| self.disconnected().map_or(Ok(()), Err));
            if let Err(end) = ended.and(self.socket_flush().await) {
                return end;
            }
        }
    }

    /// What the turn sent goes out in one write.
    async fn socket_flush(&mut self) -> Result<(), End> {
        self.socket.flush().await?;
        if let Some(since) = self.unwritten_since.take() {
            self.state.metrics.stage(Stage::Written, since);
        }
        Ok(())
    }

    /// Whether to read the next frame: no append waits for the writer, not too many are
    /// pending, no ENTER or LEAVE is (what follows one depends on its outcome), no
    /// subscription's room is being looked up, and no DISCONNECT came.
    fn reading(&self) -> bool {
        self.parked.is_none()
            && self.lookup.is_none()
            && self.disconnect.is_none()
            && self.in_flight.len() < MAX_IN_FLIGHT
            && !self.presence.table().changing()
    }

    fn on_beat(&mut self, beat: Beat, reading: bool) -> Result<(), End> {
        match beat {
            Beat::Silent if reading => return Err(End::Timeout),
            // Not reading frames, it cannot see the client's pongs: that silence is ours.
            Beat::Silent => self.timers.heartbeat.seen(),
            Beat::Ping => {}
            Beat::Alive => return Ok(()),
        }
        self.socket.ping();
        Ok(())
    }

    fn catch_up_if_behind(&mut self) {
        if self.catch_up.is_reading() {
            return;
        }
        if let Some((room_id, after)) = self.presence.table().behind() {
            let state = &self.state;
            let limit = page_limit(state.settings.session_queue_bytes);
            self.catch_up.start(
                state.store.clone(),
                state.replays.clone(),
                room_id,
                after,
                limit,
            );
        }
    }

    /// Leaves every room (a LEAVE each it is a member of, however the connection ended) and
    /// closes the socket.
    async fn finish(mut self, end: End, stream: &mut Incoming) {
        self.presence.leave_all();
        if let Dialect::Stomp(stomp) = &self.dialect {
            match end {
                End::Slow => self.socket.text(stomp.slow()),
                End::TooLarge => self.socket.text(stomp.too_large()),
                End::Flood => self.socket.text(stomp.flood()),
                _ => {}
            }
        }
        // The client answers a close of ours, unless it closed first; on shutdown nobody waits
        // for its answer.
        let handshake = !matches!(end, End::ClientClosed(_) | End::Shutdown);
        if let Some(reason) = end.close_reason(self.state.settings.max_frame_bytes) {
            self.socket.close(reason, handshake.then_some(stream)).await;
        }
    }
}
