//! What a session starts from: the connection the upgrade hands over, in its dialect and
//! transport, and the count of open sessions it stays in until it ends.

use std::sync::Arc;

use tokio::net::tcp::OwnedWriteHalf;

use super::rooms::Reading;
use crate::clients::OpenConnection;
use crate::hub::SessionId;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::ws::dialect::stomp::Stomp;
use crate::ws::transport::websocket::Transport;

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
