//! One WebSocket connection: a single `select!` loop over shutdown, the slow-consumer signal,
//! the expiry of its token, this instance's eviction, settled appends, queued room events,
//! catch-up pages, room in the writer's queue, client frames and the heartbeat; then one
//! cleanup. When the writer's queue is full, the append a
//! frame asks for waits in the loop, which reads no further frame meanwhile: a saturated
//! writer slows down what sessions read, never what they deliver.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::watch;
use tokio::time::Sleep;

use super::catch_up::{CatchUp, page_limit};
use super::close::End;
use super::connection::{Broken, Incoming, Received, Socket};
use super::frame_limit::FrameLimit;
use super::heartbeat::{Beat, Heartbeat};
use super::in_flight::{InFlight, Settled};
use super::intake::{Append, Effect, Speaker, plan};
use super::protocol::{ClientFrame, Echo, Refusal, WsError, closed_frame, parse};
use super::rooms::{Decision, Done, Presence};
use crate::clients::OpenConnection;
use crate::domain::{Event, EventKind, RoomId, Seq};
use crate::hub::{MemberQueue, Outbound, SessionId, member_queue};
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::StoreError;
use crate::writer::{AppendError, AppendSlot, WriteError};

/// Appends a session may have in flight before it stops reading frames (backpressure).
const MAX_IN_FLIGHT: usize = 256;
/// Most queued items forwarded in one turn of the loop, and so in one write.
const FORWARD_BATCH: usize = 64;

pub struct Session {
    state: Arc<AppState>,
    socket: Socket,
    presence: Presence,
    queue: MemberQueue,
    limiter: FrameLimit,
    in_flight: InFlight,
    parked: Option<Parked>,
    catch_up: CatchUp,
    heartbeat: Heartbeat,
    speaker: Speaker,
    /// In identity mode, when its token expires.
    expiry: Option<Pin<Box<Sleep>>>,
    /// Changes when the other instances took this one for dead.
    evictions: watch::Receiver<u64>,
    _open: Open,
}

/// Who opened the connection: its identity in identity mode, and its place under the
/// per-client connection cap.
pub struct Client {
    pub identity: Option<Identity>,
    pub connection: Option<OpenConnection>,
}

/// A frame's append waiting for room in the writer's queue. The wait is kept across turns of
/// the loop, so the session keeps its place in the writer's line.
struct Parked {
    append: Append,
    echo: Echo,
    room: Pin<Box<dyn Future<Output = Result<AppendSlot, WriteError>>>>,
}

/// Room in the writer's queue for the parked append; never resolves while none is parked.
async fn room_for(parked: &mut Option<Parked>) -> Result<AppendSlot, WriteError> {
    match parked {
        Some(parked) => (&mut parked.room).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the token expires; never in open mode.
async fn expired(expiry: &mut Option<Pin<Box<Sleep>>>) {
    match expiry {
        Some(expiry) => expiry.await,
        None => std::future::pending().await,
    }
}

/// A timer that fires when the identity's token expires.
fn expiry_of(identity: &Identity) -> Pin<Box<Sleep>> {
    let left = identity
        .expires_at()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Box::pin(tokio::time::sleep(left))
}

/// Counts the session as open until it is dropped, however its task ends.
struct Open {
    metrics: Arc<Metrics>,
    _connection: Option<OpenConnection>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.connections.dec();
    }
}

impl Session {
    /// Runs the connection to its end, then leaves every room and closes the socket.
    pub async fn run(
        state: Arc<AppState>,
        id: SessionId,
        write: OwnedWriteHalf,
        mut stream: Incoming,
        client: Client,
    ) {
        let mut session = Self::new(state, id, write, client);
        tracing::info!("session opened");
        let end = session.serve(&mut stream).await;
        tracing::info!(
            ?end,
            rooms = session.presence.table().len(),
            "session closed"
        );
        session.finish(end, &mut stream).await;
    }

    fn new(state: Arc<AppState>, id: SessionId, write: OwnedWriteHalf, client: Client) -> Self {
        let settings = &state.settings;
        let (member, queue) = member_queue(settings.session_queue, settings.session_queue_bytes);
        let limiter = FrameLimit::new(
            settings,
            state.ws_limiter.as_ref(),
            client.identity.as_ref(),
        );
        state.metrics.connections.inc();
        Self {
            socket: Socket::new(write, queue.slow().clone(), state.shutdown.clone()),
            presence: Presence::new(id, state.hub.clone(), state.writer.clone(), member),
            heartbeat: Heartbeat::new(settings.ping_interval(), settings.client_timeout()),
            expiry: client.identity.as_ref().map(expiry_of),
            evictions: state.evictions.subscribe(),
            speaker: Speaker {
                session: id,
                signed_as: client.identity.map(|identity| identity.name().clone()),
            },
            _open: Open {
                metrics: state.metrics.clone(),
                _connection: client.connection,
            },
            queue,
            limiter,
            in_flight: InFlight::default(),
            parked: None,
            catch_up: CatchUp::default(),
            state,
        }
    }

    async fn serve(&mut self, stream: &mut Incoming) -> End {
        let shutdown = self.state.shutdown.clone();
        let slow = self.queue.slow().clone();
        loop {
            self.catch_up_if_behind();
            let reading = self.reading();
            let step = tokio::select! {
                biased;
                () = shutdown.cancelled() => Err(End::Shutdown),
                () = slow.cancelled() => Err(End::Slow),
                () = expired(&mut self.expiry) => Err(End::Expired),
                Ok(()) = self.evictions.changed() => Err(End::Evicted),
                Some(settled) = self.in_flight.next() => self.settle(settled),
                Some(item) = self.queue.recv() => self.forward_queued(item),
                (room_id, after, page) = self.catch_up.next() => self.replay(room_id, after, page),
                slot = room_for(&mut self.parked) => self.unpark(slot),
                frame = stream.next(), if reading => self.on_frame(frame),
                beat = self.heartbeat.tick() => self.on_beat(beat, reading),
            };
            // What the turn sent goes out in one write.
            if let Err(end) = step.and(self.socket.flush().await) {
                return end;
            }
        }
    }

    /// Whether to read the next frame: no append waits for the writer, not too many are
    /// pending, and no ENTER or LEAVE is (what follows one depends on its outcome).
    fn reading(&self) -> bool {
        self.parked.is_none()
            && self.in_flight.len() < MAX_IN_FLIGHT
            && !self.presence.table().changing()
    }

    fn on_beat(&mut self, beat: Beat, reading: bool) -> Result<(), End> {
        match beat {
            Beat::Silent if reading => return Err(End::Timeout),
            // Not reading frames, it cannot see the client's pongs: that silence is ours.
            Beat::Silent => self.heartbeat.seen(),
            Beat::Ping => {}
        }
        self.socket.ping();
        Ok(())
    }

    fn on_frame(&mut self, frame: Option<Result<Received, Broken>>) -> Result<(), End> {
        self.heartbeat.seen();
        match frame {
            None => Err(End::Gone),
            Some(Err(Broken::TooLarge)) => Err(End::TooLarge),
            Some(Err(Broken::NotUtf8)) => Err(End::InvalidText),
            Some(Err(Broken::Protocol)) => Err(End::Protocol),
            Some(Ok(message)) => self.on_message(message),
        }
    }

    /// Every frame counts against the rate limit before anything else is done with it: a
    /// limited text frame is still read for the ids its refusal echoes, a limited ping gets no
    /// pong.
    fn on_message(&mut self, message: Received) -> Result<(), End> {
        let admitted = self.limiter.admits();
        match message {
            Received::Text(text) => return self.on_text(&text, !admitted),
            Received::Binary => return Err(End::Binary),
            Received::Ping(payload) if admitted => self.socket.pong(payload),
            Received::Ping(_) | Received::Pong => {}
            Received::Close(reason) => return Err(End::ClientClosed(reason)),
        }
        Ok(())
    }

    fn on_text(&mut self, text: &str, limited: bool) -> Result<(), End> {
        let parsed = parse(text);
        let kind = parsed
            .as_ref()
            .map_or("INVALID", |f| f.action.kind().as_str());
        self.state.metrics.frame_in(kind);
        let refusal = match parsed {
            Ok(frame) if !limited => return self.dispatch(frame),
            Ok(frame) => Refusal {
                error: WsError::RateLimited,
                echo: Echo::from(&frame),
            },
            Err(refusal) if limited => Refusal {
                error: WsError::RateLimited,
                ..refusal
            },
            Err(refusal) => refusal,
        };
        self.refuse(refusal);
        Ok(())
    }

    fn dispatch(&mut self, frame: ClientFrame) -> Result<(), End> {
        let echo = Echo::from(&frame);
        match plan(frame, self.presence.table_mut(), &self.speaker) {
            Ok(Some(append)) => return self.queue_or_park(append, echo),
            Ok(None) => {}
            Err(error) => self.refuse(Refusal { error, echo }),
        }
        Ok(())
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

    fn unpark(&mut self, slot: Result<AppendSlot, WriteError>) -> Result<(), End> {
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
            } => self.presence.join(room_id, sender, resume_after),
            Effect::Leave => self.presence.table_mut().leaving(room_id),
            Effect::None => {}
        }
        self.in_flight.push(kind, room_id, echo, slot.append(event));
    }

    /// A stored TALK reaches this session through its queue; an ENTER or LEAVE settles the
    /// room's phase; a failure is reported to the client.
    fn settle(&mut self, settled: Settled) -> Result<(), End> {
        let Settled {
            kind,
            room_id,
            echo,
            outcome,
        } = settled;
        let error = match outcome {
            Ok(seq) => {
                self.stored(kind, room_id, seq);
                return Ok(());
            }
            Err(AppendError::RoomNotFound(room_id)) => WsError::RoomNotFound(room_id),
            Err(AppendError::Unavailable) => WsError::Unavailable,
            // Its LEAVE was stored already, when its instance was taken for dead: it has left.
            Err(AppendError::NotMember(room_id)) => {
                self.presence.remove(room_id);
                return Ok(());
            }
        };
        match kind {
            EventKind::Enter => {
                self.presence.remove(room_id);
            }
            EventKind::Leave => self.presence.table_mut().stay(room_id),
            EventKind::Talk => {}
        }
        self.refuse(Refusal { error, echo });
        Ok(())
    }

    fn stored(&mut self, kind: EventKind, room_id: RoomId, seq: Seq) {
        match kind {
            EventKind::Enter => self.presence.table_mut().entered(room_id, seq),
            EventKind::Leave => self.presence.table_mut().left(room_id, seq),
            EventKind::Talk => return,
        }
        self.done_with(room_id);
    }

    /// Forwards a queued item and whatever else is queued already, up to a batch, so that
    /// they go out in one write.
    fn forward_queued(&mut self, first: Outbound) -> Result<(), End> {
        self.forward(first);
        for _ in 1..FORWARD_BATCH {
            let Some(item) = self.queue.try_recv() else {
                break;
            };
            self.forward(item);
        }
        Ok(())
    }

    fn forward(&mut self, item: Outbound) {
        match item {
            Outbound::Event {
                room_id,
                seq,
                frame,
            } => {
                if self.presence.table_mut().live(room_id, seq) == Decision::Deliver {
                    self.socket.text(frame);
                    self.state.metrics.events_out.inc();
                    self.done_with(room_id);
                }
            }
            Outbound::Closed { room_id, last_seq } => {
                self.presence.table_mut().close(room_id, last_seq);
                self.done_with(room_id);
            }
        }
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

    /// Sends the events of a page that the client has not had yet. A page read from where the
    /// room's catch-up no longer starts (a repeated ENTER with `lastSeq` moved it back, or the
    /// session left) is dropped; the next read starts from where it is now.
    fn replay(
        &mut self,
        room_id: RoomId,
        after: Seq,
        page: Result<Vec<Event>, StoreError>,
    ) -> Result<(), End> {
        let events = page.map_err(|error| {
            tracing::error!(%error, "reading history for a catch-up failed");
            End::Unavailable
        })?;
        if self.presence.table().behind_in(room_id) != Some(after) {
            return Ok(());
        }
        if events.is_empty() {
            self.presence.table_mut().give_up(room_id);
        }
        for event in events {
            if !self.presence.table_mut().replayed(room_id, event.seq) {
                continue;
            }
            if let Some(json) = event.to_json() {
                self.socket.text(json.into());
                self.state.metrics.events_out.inc();
            }
        }
        self.done_with(room_id);
        Ok(())
    }

    /// Drops a room the session is done with: a leaver's that has had every event before its
    /// LEAVE, or a deleted room's once every event through its last was sent, then `CLOSED`.
    fn done_with(&mut self, room_id: RoomId) {
        match self.presence.table().done(room_id) {
            Done::No => {}
            Done::Left => {
                self.presence.remove(room_id);
            }
            Done::Closed => {
                self.presence.remove(room_id);
                self.socket.text(closed_frame(room_id));
            }
        }
    }

    fn refuse(&mut self, refusal: Refusal) {
        self.state.metrics.ws_error(refusal.error.code());
        self.socket.text(refusal.frame());
    }

    /// Leaves every room (a LEAVE each, however the connection ended) and closes the socket.
    async fn finish(mut self, end: End, stream: &mut Incoming) {
        self.presence.leave_all();
        // The client answers a close of ours, unless it closed first; on shutdown nobody waits
        // for its answer.
        let handshake = !matches!(end, End::ClientClosed(_) | End::Shutdown);
        if let Some(reason) = end.close_reason(self.state.settings.max_frame_bytes) {
            self.socket.close(reason, handshake.then_some(stream)).await;
        }
    }
}
