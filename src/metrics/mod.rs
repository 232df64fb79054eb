//! Prometheus metrics, registered once and shared. Label values are `&'static str`, so no
//! client input can create new series.

mod catalog;
mod webhooks;

use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use webhooks::WebhookMetrics;

type Labels = [(&'static str, &'static str); 1];
type StageHistograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Where an event is on its way from a client's frame to its readers' sockets; each stage's
/// histogram times the step that ends there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The WebSocket message that carried it was read -> its append is in the writer's queue.
    Queued,
    /// In the writer's queue -> its batch committed.
    Committed,
    /// Committed -> in the queue of every reader here (with several instances: handed to the
    /// cluster, which publishes it).
    FannedOut,
    /// In a reader's queue -> written to its socket (the oldest event of each write).
    Written,
}

impl Stage {
    const ALL: [Self; 4] = [
        Self::Queued,
        Self::Committed,
        Self::FannedOut,
        Self::Written,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Committed => "committed",
            Self::FannedOut => "fanned_out",
            Self::Written => "written",
        }
    }
}

fn stage_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 3.0, 16))
}

/// The stages' histograms, registered as one family and each looked up in it once: every
/// event passes each stage, every reader's write passes `written`, and a family's lookup
/// hashes its labels under a lock.
struct Stages {
    family: StageHistograms,
    each: [Histogram; Stage::ALL.len()],
}

impl Stages {
    fn new() -> Self {
        let family = StageHistograms::new_with_constructor(stage_histogram);
        let each =
            Stage::ALL.map(|stage| family.get_or_create(&[("stage", stage.label())]).clone());
        Self { family, each }
    }
}
type ErrorLabels = [(&'static str, &'static str); 2];

pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub connections_closed: Counter,
    sessions: Family<ErrorLabels, Gauge>,
    pub rooms_active: Gauge,
    pub ordered_rooms: Gauge,
    frames_in: Family<Labels, Counter>,
    events_stored: Family<Labels, Counter>,
    moderation_actions: Family<Labels, Counter>,
    removals: Family<Labels, Counter>,
    append_failures: Family<Labels, Counter>,
    heartbeats: Family<Labels, Counter>,
    broker_pings: Family<Labels, Counter>,
    writer_queued: Family<Labels, Counter>,
    writer_taken: Family<Labels, Counter>,
    pub events_out: Counter,
    notices: Family<ErrorLabels, Counter>,
    pub resends: Counter,
    errors: Family<ErrorLabels, Counter>,
    auth_refused: Family<ErrorLabels, Counter>,
    pub slow_consumers: Counter,
    pub broker_published: Counter,
    pub broker_unpublished: Counter,
    pub broker_received: Counter,
    pub gap_fills: Counter,
    pub retention_erasures: Counter,
    pub broker_delay_seconds: Histogram,
    pub fanout_seconds: Histogram,
    pub commit_seconds: Histogram,
    pub batch_size: Histogram,
    stages: Stages,
    pub webhooks: WebhookMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::default(),
            connections: Gauge::default(),
            connections_closed: Counter::default(),
            sessions: Family::default(),
            rooms_active: Gauge::default(),
            ordered_rooms: Gauge::default(),
            frames_in: Family::default(),
            events_stored: Family::default(),
            moderation_actions: Family::default(),
            removals: Family::default(),
            append_failures: Family::default(),
            heartbeats: Family::default(),
            broker_pings: Family::default(),
            writer_queued: Family::default(),
            writer_taken: Family::default(),
            events_out: Counter::default(),
            notices: Family::default(),
            resends: Counter::default(),
            errors: Family::default(),
            auth_refused: Family::default(),
            slow_consumers: Counter::default(),
            broker_published: Counter::default(),
            broker_unpublished: Counter::default(),
            broker_received: Counter::default(),
            gap_fills: Counter::default(),
            retention_erasures: Counter::default(),
            broker_delay_seconds: Histogram::new(exponential_buckets(1e-4, 3.0, 12)),
            fanout_seconds: Histogram::new(exponential_buckets(1e-6, 4.0, 12)),
            commit_seconds: Histogram::new(exponential_buckets(1e-5, 3.0, 14)),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            stages: Stages::new(),
            webhooks: WebhookMetrics::default(),
        };
        metrics.register_all();
        metrics
    }

    pub fn frame_in(&self, kind: &'static str) {
        self.frames_in.get_or_create(&[("type", kind)]).inc();
    }

    /// An event stored, by type; a MODERATION event by its `action` too.
    pub fn event_stored(&self, kind: &'static str, action: Option<&'static str>) {
        self.events_stored.get_or_create(&[("type", kind)]).inc();
        if let Some(action) = action {
            self.moderation_actions
                .get_or_create(&[("action", action)])
                .inc();
        }
    }

    /// A session removed from a room (`reason`: kicked, banned, revoked).
    pub fn removed(&self, reason: &'static str) {
        self.removals.get_or_create(&[("reason", reason)]).inc();
    }

    /// `reason`: `unavailable` (the batch failed), `rejected` (the database refused the
    /// event), `room_gone` or `not_member`.
    pub fn append_failed(&self, reason: &'static str) {
        self.append_failures
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    pub fn writer_queued(&self, command: &'static str) {
        self.writer_queued
            .get_or_create(&[("command", command)])
            .inc();
    }

    pub fn writer_taken(&self, command: &'static str) {
        self.writer_taken
            .get_or_create(&[("command", command)])
            .inc();
    }

    /// `result`: `ok`, `failed` or `evicted` (the others took this instance for dead).
    /// `result`: `ok`, or `failed` (the subscription is then opened again).
    pub fn broker_ping(&self, result: &'static str) {
        self.broker_pings.get_or_create(&[("result", result)]).inc();
    }

    pub fn heartbeat(&self, result: &'static str) {
        self.heartbeats.get_or_create(&[("result", result)]).inc();
    }

    /// An error sent on a WebSocket session: `ws` for `/ws/chat`'s ERROR frames, `stomp`
    /// for STOMP's refusals.
    pub fn ws_error(&self, protocol: &'static str, code: &'static str) {
        let transport = match protocol {
            "stomp" => "stomp",
            _ => "ws",
        };
        self.errors
            .get_or_create(&[("transport", transport), ("code", code)])
            .inc();
    }

    pub fn session_opened(&self, (protocol, transport): (&'static str, &'static str)) {
        self.sessions
            .get_or_create(&[("protocol", protocol), ("transport", transport)])
            .inc();
    }

    pub fn session_closed(&self, (protocol, transport): (&'static str, &'static str)) {
        self.sessions
            .get_or_create(&[("protocol", protocol), ("transport", transport)])
            .dec();
    }

    /// An event went through `stage`'s step, which began at `since`.
    pub fn stage(&self, stage: Stage, since: Instant) {
        self.stages.each[stage as usize].observe(since.elapsed().as_secs_f64());
    }

    /// A notice of this kind (`typing`, `read`) went to the members here, or was dropped.
    pub fn notice(&self, kind: &'static str, sent: bool) {
        let outcome = if sent { "sent" } else { "dropped" };
        self.notices
            .get_or_create(&[("type", kind), ("outcome", outcome)])
            .inc();
    }

    pub fn http_error(&self, code: &'static str) {
        self.errors
            .get_or_create(&[("transport", "http"), ("code", code)])
            .inc();
    }

    pub fn auth_refused(&self, transport: &'static str, reason: &'static str) {
        self.auth_refused
            .get_or_create(&[("transport", transport), ("reason", reason)])
            .inc();
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
