//! AppState: everything a handler or session needs, built once and shared as one `web::Data`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::DefaultKeyedRateLimiter;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::hub::sequencer::Sequencer;
use crate::hub::{Hub, SessionId};
use crate::metrics::Metrics;
use crate::store::Store;

pub type HttpLimiter = DefaultKeyedRateLimiter<std::net::IpAddr>;

pub struct AppState {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub sequencer: Sequencer,
    pub metrics: Arc<Metrics>,
    /// Cancelled once on shutdown: readiness turns 503 and sessions close with 1001.
    pub shutdown: CancellationToken,
    /// Per-address REST limiter; None when rate limits are off.
    pub http_limiter: Option<Arc<HttpLimiter>>,
    /// The OpenAPI document, rendered once so every response is byte-identical.
    pub openapi: String,
    /// Source of session ids for logs; starts at 1.
    pub(crate) next_session: AtomicU64,
}

impl AppState {
    pub fn next_session_id(&self) -> SessionId {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}
