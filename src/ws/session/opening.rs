//! What a session starts from: the connection the upgrade hands over, in its dialect and
//! transport, and the count of open sessions it stays in until it ends; and the session made
//! of it, bound to its identity (again when a STOMP CONNECT brings one).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::net::tcp::OwnedWriteHalf;

use super::Session;
use super::catch_up::CatchUp;
use super::in_flight::InFlight;
use super::intake::Speaker;
use super::rooms::{Presence, Reading};
use super::timers::{Timers, expiry_of};
use crate::clients::OpenConnection;
use crate::clients::frames::FrameLimit;
use crate::domain::Authority;
use crate::hub::{SessionId, member_queue};
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::ws::dialect::stomp::Stomp;
use crate::ws::transport::websocket::{Socket, Transport};

/// What the frames on a connection mean.
pub enum Dialect {
    /// `/ws/chat`: one JSON object per message.
    Chat,
    /// `/ws/stomp`: STOMP frames.
    Stomp(Box<Stomp>),
}

impl Dialect {
    pub(super) fn reading(&self) -> Reading {
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

/// Counts the session as open until it is dropped, however its task ends.
pub(super) struct Open {
    metrics: Arc<Metrics>,
    labels: (&'static str, &'static str),
    _connection: Option<OpenConnection>,
}

impl Open {
    /// Counts a session that opens, by dialect and transport, until it ends.
    pub(super) fn count(
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

impl Transport {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::SockJs => "sockjs",
        }
    }
}

impl Session {
    pub(super) fn new(state: Arc<AppState>, opening: Opening) -> Self {
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
    pub(super) fn sign_in(&mut self, identity: Option<Identity>) {
        let state = &self.state;
        self.limiter = FrameLimit::new(
            &state.settings,
            state.ws_limiter.as_ref(),
            identity.as_ref(),
        );
        self.timers.expiry = identity.as_ref().map(expiry_of);
        self.speaker.signed_as = identity.as_ref().map(|identity| identity.name().clone());
        let bot = identity.as_ref().is_some_and(Identity::is_bot);
        self.speaker.bot = bot;
        self.presence.bot = bot;
        self.speaker.authority = match &identity {
            None => Authority::Anyone,
            Some(identity) if identity.is_admin() => Authority::Admin,
            Some(_) => Authority::Signed,
        };
        self.identity = identity;
    }
}
