//! AppState: everything a handler or session needs, built once and shared as one `web::Data`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header::HeaderMap;
use governor::DefaultKeyedRateLimiter;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clients::frames::IdentityLimiter;
use crate::clients::{ClientAddress, ClientKey, ConnectionCap};
use crate::cluster::Cluster;
use crate::config::Settings;
use crate::domain::InstanceId;
use crate::hub::{Fanout, Hub, SessionId};
use crate::identity::{self, Caller, Identity, Refused, Verifier};
use crate::metrics::Metrics;
use crate::store::{Liveness, Store, Webhooks};
use crate::webhooks::Sealer;
use crate::writer::Writer;

pub type HttpLimiter = DefaultKeyedRateLimiter<ClientKey>;

pub struct AppState {
    pub settings: Settings,
    /// This process, among the instances sharing storage.
    pub instance: InstanceId,
    /// Reads; every write goes through `writer`.
    pub store: Arc<dyn Store>,
    /// This instance's heartbeat, on a connection of its own.
    pub liveness: Arc<dyn Liveness>,
    /// Webhooks, their delivery positions and the events they send, on their own pool.
    pub webhooks: Webhooks,
    /// Seals webhook secrets; None when no key is set (webhooks cannot be created then).
    pub sealer: Option<Arc<Sealer>>,
    pub hub: Arc<Hub>,
    pub writer: Writer,
    /// Fan-out across instances; None when this instance is alone (no `REDIS_URL`).
    pub cluster: Option<Arc<Cluster>>,
    /// Where events and notices go: the hub, or with several instances the cluster.
    pub fanout: Arc<dyn Fanout>,
    /// Bumped each time the other instances took this one for dead (and stored its members'
    /// LEAVEs): every session open then closes, so its client reconnects and enters again.
    pub evictions: Arc<watch::Sender<u64>>,
    pub metrics: Arc<Metrics>,
    /// Cancelled once on shutdown: readiness turns 503 and sessions close with 1001.
    pub shutdown: CancellationToken,
    /// Every session and request in progress, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Turns at the read pool for session replays: at most half its connections, so replays,
    /// however many, leave the rest to everything else.
    pub replays: Arc<Semaphore>,
    pub clients: ClientAddress,
    /// Checks tokens; None when identity is off (open mode).
    pub identity: Option<Verifier>,
    /// Per-client REST limiter; None when rate limits are off.
    pub http_limiter: Option<Arc<HttpLimiter>>,
    /// Per-identity WebSocket frame limiter, shared by an identity's sessions; None when rate
    /// limits are off.
    pub ws_limiter: Option<Arc<IdentityLimiter>>,
    /// Per-client WebSocket connection cap; None when rate limits are off.
    pub connection_cap: Option<Arc<ConnectionCap>>,
    /// The OpenAPI document, rendered once so every response is byte-identical.
    pub openapi: String,
    /// Source of session ids for logs; starts at 1.
    pub(crate) next_session: AtomicU64,
}

impl AppState {
    pub fn next_session_id(&self) -> SessionId {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// The address of the client behind a connection from `peer` (see [`ClientAddress::of`]);
    /// None when the connection has no peer address.
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        Some(self.clients.of(peer?.ip(), headers))
    }

    /// What per-client limits count a request by: its identity, else its address.
    pub fn client_key(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        identity: Option<&Identity>,
    ) -> Option<ClientKey> {
        match identity {
            Some(identity) => Some(ClientKey::Identity(identity.subject().into())),
            None => self.client_ip(peer, headers).map(ClientKey::Address),
        }
    }

    /// Who sends a REST request: anyone in open mode, else the holder of a valid bearer token.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, Refused> {
        let Some(verifier) = &self.identity else {
            return Ok(Caller::Anyone);
        };
        identity::bearer(headers)
            .and_then(|token| verifier.verify(token))
            .map(Caller::Signed)
            .inspect_err(|refused| self.metrics.auth_refused("http", refused.reason()))
    }

    /// Who opens a WebSocket: nobody in particular in open mode, else the holder of a valid
    /// token (in its `Authorization` header or its `access_token` parameter).
    pub fn upgrade_identity(
        &self,
        headers: &HeaderMap,
        query: &str,
    ) -> Result<Option<Identity>, Refused> {
        let Some(verifier) = &self.identity else {
            return Ok(None);
        };
        identity::upgrade_token(headers, query)
            .and_then(|token| verifier.verify(token.as_deref()))
            .map(Some)
            .inspect_err(|refused| self.metrics.auth_refused("ws", refused.reason()))
    }
}
