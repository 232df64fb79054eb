//! One WebSocket connection, whatever its framing: a single `select!` loop over shutdown, the
//! slow-consumer signal, the expiry of its token, this instance's eviction, settled appends,
//! queued room events, catch-up pages, room in the writer's queue, a subscription's room being
//! looked up, client frames and the heart-beats; then one cleanup. What a turn of the loop
//! sends goes out in one write.
//!
//! The limits, the queue, the rooms, the replays and the shutdown are the same for every
//! framing; what varies is the dialect ([`Dialect`]: `/ws/chat`'s JSON frames or STOMP's, each
//! over a plain WebSocket or SockJS), which turns what the client sends into the same appends
//! and subscriptions, and the events into frames ([`delivery`], [`stomp`]). When the writer's
//! queue is full, the append a frame asks for waits in the loop, which reads no further frame
//! meanwhile: a saturated writer slows down what sessions read, never what they deliver.

mod appends;
mod catch_up;
mod delivery;
mod heartbeat;
mod in_flight;
mod intake;
mod rooms;
mod subscriptions;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use bytestring::ByteString;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior, Sleep};

use self::appends::{Parked, Resent};
use self::catch_up::{CatchUp, page_limit};
use self::heartbeat::{Beat, Heartbeat};
use self::in_flight::InFlight;
use self::intake::Speaker;
use self::rooms::{Presence, Reading};
use self::subscriptions::{Disconnect, Looked};
use super::dialect::chat::{Echo, Refusal, WsError, parse};
use super::dialect::stomp::{Decoded, Fatal, Stomp};
use super::transport::close::End;
use super::transport::sockjs;
use super::transport::websocket::{Broken, Incoming, Received, Socket, Transport};
use crate::clients::OpenConnection;
use crate::clients::frames::FrameLimit;
use crate::config::Settings;
use crate::hub::{MemberQueue, SessionId, member_queue};
use crate::identity::Identity;
use crate::metrics::{Metrics, Stage};
use crate::state::AppState;

/// Appends a session may have in flight before it stops reading frames (backpressure).
const MAX_IN_FLIGHT: usize = 256;
/// Most bytes of refusals and receipts one WebSocket message may get: the largest message
/// (64 KiB by default) of the frames that cost least to send gets this many without harm to
/// anyone, and one holding thousands of empty SockJS messages cannot make much more.
const MAX_ANSWERS: usize = 256 * 1024;

/// One message of the dialect, as it arrived.
enum Payload {
    Text(ByteString),
    Binary(Bytes),
}

/// A frame that arrived and waits for the session to act on it.
enum Pending {
    Chat(ByteString),
    Stomp(Result<Decoded, Fatal>),
}

/// What the frames on a connection mean.
pub enum Dialect {
    /// `/ws/chat`: one JSON object per message.
    Chat,
    /// `/ws/stomp`: STOMP frames.
    Stomp(Box<Stomp>),
}

impl Dialect {
    fn reading(&self) -> Reading {
        match self {
            Self::Chat => Reading::Members,
            Self::Stomp(_) => Reading::Subscriptions,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Stomp(_) => "stomp",
        }
    }
}

/// Who opened the connection: its identity in identity mode (a STOMP client may bring it in
/// CONNECT instead), and its place under the per-client connection cap.
pub struct Client {
    pub identity: Option<Identity>,
    pub connection: Option<OpenConnection>,
}

/// A connection as the upgrade hands it over.
pub struct Opening {
    pub id: SessionId,
    pub write: OwnedWriteHalf,
    pub transport: Transport,
    pub dialect: Dialect,
    pub client: Client,
}

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
    parked: Option<Parked>,
    /// `/ws/chat` frames read and not acted on yet (a SockJS message may carry several);
    /// STOMP's wait in its decoder, read one at a time.
    pending: VecDeque<ByteString>,
    /// The last WebSocket message paid its place under the frame limit (Some: whether it
    /// was over it): its first frame needs no other, and a message that completes no frame
    /// has been counted all the same.
    prepaid: Option<bool>,
    /// Bytes of refusals and receipts sent for what the last WebSocket message carried: past
    /// [`MAX_ANSWERS`], the session ends, so no message makes the server write many times its
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

/// Ticks of an optional timer; never without one.
async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A timer that first fires one period from now.
fn every(period: Duration) -> Interval {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// Counts the session as open until it is dropped, however its task ends.
struct Open {
    metrics: Arc<Metrics>,
    labels: (&'static str, &'static str),
    _connection: Option<OpenConnection>,
}

impl Open {
    /// Counts a session that opens, by dialect and transport, until it ends.
    fn count(
        metrics: &Arc<Metrics>,
        dialect: &Dialect,
        transport: Transport,
        connection: Option<OpenConnection>,
    ) -> Self {
        let labels = (dialect.name(), transport.name());
        metrics.connections.inc();
        metrics.session_opened(labels);
        Self {
            metrics: metrics.clone(),
            labels,
            _connection: connection,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.connections.dec();
        self.metrics.connections_closed.inc();
        self.metrics.session_closed(self.labels);
    }
}

/// The session's clocks: its heart-beats (WebSocket pings, SockJS's `h`, STOMP's), when its
/// token expires, and by when a STOMP client must CONNECT.
struct Timers {
    heartbeat: Heartbeat,
    /// SockJS's `h`, on a SockJS connection.
    sockjs_beat: Option<Interval>,
    /// STOMP's heart-beat, when the client asked for one.
    stomp_beat: Option<Interval>,
    /// In identity mode, when its token expires.
    expiry: Option<Pin<Box<Sleep>>>,
    /// On STOMP, until CONNECT: when the client must have sent it.
    connect_by: Option<Pin<Box<Sleep>>>,
}

impl Timers {
    fn new(settings: &Settings, transport: Transport, dialect: &Dialect) -> Self {
        Self {
            heartbeat: Heartbeat::new(settings.ping_interval(), settings.client_timeout()),
            sockjs_beat: (transport == Transport::SockJs).then(|| every(sockjs::HEARTBEAT)),
            stomp_beat: None,
            expiry: None,
            connect_by: matches!(dialect, Dialect::Stomp(_))
                .then(|| Box::pin(tokio::time::sleep(settings.client_timeout()))),
        }
    }
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::SockJs => "sockjs",
        }
    }
}

impl Session {
    /// Runs the connection to its end, then leaves every room and closes the socket.
    pub async fn run(state: Arc<AppState>, opening: Opening, mut stream: Incoming) {
        let mut session = Self::new(state, opening);
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
        session.finish(end, &mut stream).await;
    }

    fn new(state: Arc<AppState>, opening: Opening) -> Self {
        let Opening {
            id,
            write,
            transport,
            dialect,
            client,
        } = opening;
        let settings = &state.settings;
        let (member, queue) = member_queue(settings.session_queue, settings.session_queue_bytes);
        let open = Open::count(&state.metrics, &dialect, transport, client.connection);
        let (hub, writer) = (state.hub.clone(), state.writer.clone());
        let presence = Presence::new(id, hub, writer, member, dialect.reading());
        let stops = [queue.slow().clone(), state.shutdown.clone()];
        let mut session = Self {
            socket: Socket::new(write, transport, stops, settings.client_timeout()),
            limiter: FrameLimit::Off,
            evictions: state.evictions.subscribe(),
            timers: Timers::new(settings, transport, &dialect),
            speaker: Speaker::anyone(id),
            identity: None,
            _open: open,
            id,
            dialect,
            transport,
            presence,
            queue,
            in_flight: InFlight::default(),
            parked: None,
            pending: VecDeque::new(),
            prepaid: None,
            answered: 0,
            frame_read: None,
            unwritten_since: None,
            resent: Vec::new(),
            catch_up: CatchUp::default(),
            lookup: None,
            disconnect: None,
            state,
        };
        session.sign_in(client.identity);
        session
    }

    /// Binds the session to an identity (or to nobody, in open mode): its sender, its token's
    /// expiry and its frame quota.
    fn sign_in(&mut self, identity: Option<Identity>) {
        let state = &self.state;
        self.limiter = FrameLimit::new(
            &state.settings,
            state.ws_limiter.as_ref(),
            identity.as_ref(),
        );
        self.timers.expiry = identity.as_ref().map(expiry_of);
        self.speaker.signed_as = identity.as_ref().map(|identity| identity.name().clone());
        self.identity = identity;
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
                Some(item) = self.queue.recv() => self.forward_queued(item),
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

    fn on_frame(&mut self, frame: Option<Result<Received, Broken>>) -> Result<(), End> {
        self.timers.heartbeat.seen();
        match frame {
            None => Err(End::Gone),
            Some(Err(Broken::TooLarge)) => Err(End::TooLarge),
            Some(Err(Broken::NotUtf8)) => Err(End::InvalidText),
            Some(Err(Broken::Protocol)) => Err(End::Protocol),
            Some(Ok(message)) => {
                self.frame_read = Some(Instant::now());
                self.on_message(message)
            }
        }
    }

    /// A message's frames wait in line (a STOMP message or a SockJS batch may hold several,
    /// and what follows an ENTER waits for its outcome, as it would on `/ws/chat`); pings,
    /// pongs and the close are handled at once.
    fn on_message(&mut self, message: Received) -> Result<(), End> {
        if matches!(message, Received::Text(_) | Received::Binary(_)) {
            self.prepaid = Some(!self.limiter.admits());
            self.answered = 0;
        }
        match (message, self.transport) {
            (Received::Text(text), Transport::SockJs) => {
                let messages = sockjs::messages(&text).ok_or(End::Protocol)?;
                for message in messages {
                    self.take_payload(Payload::Text(message.into()))?;
                }
                Ok(())
            }
            (Received::Text(text), Transport::WebSocket) => self.take_payload(Payload::Text(text)),
            (Received::Binary(bytes), Transport::WebSocket) => {
                self.take_payload(Payload::Binary(bytes))
            }
            (Received::Binary(_), Transport::SockJs) => Err(End::Binary),
            // A ping counts like any frame, and is answered whatever the count: RFC 6455 wants
            // its pong as soon as practical, and a client waiting for one must not hang.
            (Received::Ping(payload), _) => {
                self.limiter.admits();
                self.socket.pong(payload);
                Ok(())
            }
            (Received::Pong, _) => {
                self.limiter.admits();
                Ok(())
            }
            (Received::Close(reason), _) => Err(End::ClientClosed(reason)),
        }
    }

    /// Queues one message of the dialect: a JSON frame, or the bytes of STOMP frames (a text
    /// or a binary message alike).
    fn take_payload(&mut self, payload: Payload) -> Result<(), End> {
        match (&mut self.dialect, payload) {
            (Dialect::Chat, Payload::Text(text)) => self.pending.push_back(text),
            (Dialect::Chat, Payload::Binary(_)) => return Err(End::Binary),
            (Dialect::Stomp(stomp), Payload::Text(text)) => stomp.push(text.as_bytes()),
            (Dialect::Stomp(stomp), Payload::Binary(bytes)) => stomp.push(&bytes),
        }
        Ok(())
    }

    fn has_pending(&self) -> bool {
        match &self.dialect {
            Dialect::Chat => !self.pending.is_empty(),
            Dialect::Stomp(stomp) => stomp.unread(),
        }
    }

    fn next_pending(&mut self) -> Option<Pending> {
        match &mut self.dialect {
            Dialect::Chat => self.pending.pop_front().map(Pending::Chat),
            Dialect::Stomp(stomp) => stomp.next_decoded().map(Pending::Stomp),
        }
    }

    /// Counts a frame against the rate limit: true when it is over. The first frame of a
    /// message was counted with it.
    fn over_limit(&mut self) -> bool {
        self.prepaid
            .take()
            .unwrap_or_else(|| !self.limiter.admits())
    }

    /// Acts on waiting frames for as long as the session reads. Every frame counts against
    /// the rate limit before anything else is done with it: a limited one is still read for
    /// the ids its refusal echoes. (A STOMP heart-beat costs nothing of its own.)
    fn act_on_pending(&mut self) -> Result<(), End> {
        while self.reading() {
            let Some(pending) = self.next_pending() else {
                return self.message_without_frames();
            };
            match pending {
                Pending::Chat(text) => {
                    let limited = self.over_limit();
                    self.on_text(&text, limited)?;
                }
                Pending::Stomp(Ok(Decoded::HeartBeat)) => {}
                Pending::Stomp(Ok(Decoded::Frame(frame))) => {
                    let limited = self.over_limit();
                    self.on_stomp_frame(frame, limited)?;
                }
                Pending::Stomp(Err(fatal)) => return self.fatal(&fatal),
            }
        }
        Ok(())
    }

    /// A message that completed no frame (a piece of a STOMP frame, SockJS's `[]`) was
    /// counted too; over the limit, it is refused: on `/ws/chat` with an ERROR, on STOMP
    /// (where the rest of a frame cannot be refused) with ERROR and the end.
    fn message_without_frames(&mut self) -> Result<(), End> {
        if self.prepaid.take() != Some(true) {
            return Ok(());
        }
        match self.dialect {
            Dialect::Chat => self.refuse(Refusal {
                error: WsError::RateLimited,
                echo: Echo::default(),
            }),
            Dialect::Stomp(_) => self.fatal(&Fatal::rate_limited()),
        }
    }

    fn on_text(&mut self, text: &str, limited: bool) -> Result<(), End> {
        let parsed = parse(text);
        let kind = parsed.as_ref().map_or("INVALID", |f| f.action.name());
        self.state.metrics.frame_in(kind);
        let refusal = match parsed {
            Ok(frame) if !limited => {
                let echo = Echo::from(&frame);
                return self.dispatch(frame, echo);
            }
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
        self.refuse(refusal)
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

    /// Tells the client a frame was refused: an ERROR frame on `/ws/chat`; on STOMP, a
    /// MESSAGE on its errors subscription, or (without one) ERROR and the end.
    fn refuse(&mut self, refusal: Refusal) -> Result<(), End> {
        self.state
            .metrics
            .ws_error(self.dialect.name(), refusal.error.code());
        let answer = match &self.dialect {
            Dialect::Chat => refusal.frame(),
            Dialect::Stomp(stomp) => match stomp.refusal(&refusal) {
                Some(message) => message,
                None => {
                    self.socket.text(stomp.refusal_error(&refusal));
                    return Err(End::StompError);
                }
            },
        };
        self.answer(answer)
    }

    /// Sends what a client frame gets back, within what one message may get.
    pub(super) fn answer(&mut self, frame: ByteString) -> Result<(), End> {
        self.answered += frame.len();
        if self.answered > MAX_ANSWERS {
            return Err(End::Flood);
        }
        self.socket.text(frame);
        Ok(())
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
