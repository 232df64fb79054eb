//! Prometheus metrics, registered once and shared. Label values are `&'static str`, so no
//! client input can create new series.

use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
    pub broker_delay_seconds: Histogram,
    pub fanout_seconds: Histogram,
    pub commit_seconds: Histogram,
    pub batch_size: Histogram,
    stages: StageHistograms,
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
            broker_delay_seconds: Histogram::new(exponential_buckets(1e-4, 3.0, 12)),
            fanout_seconds: Histogram::new(exponential_buckets(1e-6, 4.0, 12)),
            commit_seconds: Histogram::new(exponential_buckets(1e-5, 3.0, 14)),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            stages: Family::new_with_constructor(stage_histogram),
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&mut self) {
        self.register_sessions();
        self.register_frames();
        self.register_storage();
        self.register_cluster();
        self.register_latency();
    }

    /// Sessions: how many, how they end.
    fn register_sessions(&mut self) {
        let r = &mut self.registry;
        r.register(
            "chat_connections",
            "Open WebSocket sessions",
            self.connections.clone(),
        );
        r.register(
            "chat_connections_closed",
            "WebSocket sessions ended since start",
            self.connections_closed.clone(),
        );
        r.register(
            "chat_sessions",
            "Open WebSocket sessions, by protocol (chat, stomp) and transport (websocket, sockjs)",
            self.sessions.clone(),
        );
        r.register(
            "chat_rooms_active",
            "Rooms with at least one member here",
            self.rooms_active.clone(),
        );
        r.register(
            "chat_slow_consumers",
            "Sessions closed with 1013 for a full queue",
            self.slow_consumers.clone(),
        );
        r.register(
            "chat_auth_refused",
            "Requests and upgrades refused for their token, by transport and reason",
            self.auth_refused.clone(),
        );
    }

    /// What sessions receive and send.
    fn register_frames(&mut self) {
        let r = &mut self.registry;
        r.register(
            "chat_frames_in",
            "Client frames received, by type",
            self.frames_in.clone(),
        );
        r.register(
            "chat_events_out",
            "Event frames written to sessions",
            self.events_out.clone(),
        );
        r.register(
            "chat_errors",
            "Errors sent to clients, by transport and code",
            self.errors.clone(),
        );
        r.register(
            "chat_notices",
            "TYPING and READ notices, by type and what became of them: sent to this instance's members, or dropped (a typing notice within a second of the last)",
            self.notices.clone(),
        );
        r.register(
            "chat_resends",
            "TALKs whose clientMsgId their sender had used in the room: answered with the first, not stored again",
            self.resends.clone(),
        );
    }

    /// The writer and what it stores.
    fn register_storage(&mut self) {
        let r = &mut self.registry;
        r.register(
            "chat_events_stored",
            "Events stored, by type",
            self.events_stored.clone(),
        );
        r.register(
            "chat_append_failures",
            "Appends the writer could not store, by reason",
            self.append_failures.clone(),
        );
        r.register(
            "chat_writer_queued",
            "Commands queued for the storage writer, by command",
            self.writer_queued.clone(),
        );
        r.register(
            "chat_writer_taken",
            "Commands the storage writer took from its queue, by command (queued minus taken is the queue's depth)",
            self.writer_taken.clone(),
        );
        r.register(
            "chat_heartbeats",
            "This instance's heartbeats in storage, by result",
            self.heartbeats.clone(),
        );
        r.register(
            "chat_store_commit_seconds",
            "Time to store one batch of events",
            self.commit_seconds.clone(),
        );
        r.register(
            "chat_store_batch_size",
            "Events stored per transaction",
            self.batch_size.clone(),
        );
    }

    /// Several instances: the broker and the ordering of other instances' events.
    fn register_cluster(&mut self) {
        let r = &mut self.registry;
        r.register(
            "chat_ordered_rooms",
            "Rooms whose events this instance puts back in seq order (those it has members in)",
            self.ordered_rooms.clone(),
        );
        r.register(
            "chat_broker_published",
            "Messages published to the broker for the other instances",
            self.broker_published.clone(),
        );
        r.register(
            "chat_broker_unpublished",
            "Messages dropped or failed on the way to the broker (recovered from storage)",
            self.broker_unpublished.clone(),
        );
        r.register(
            "chat_broker_pings",
            "Checks of this instance's Redis subscription (a PING on it every 5 s), by result",
            self.broker_pings.clone(),
        );
        r.register(
            "chat_broker_received",
            "Messages received from the other instances",
            self.broker_received.clone(),
        );
        r.register(
            "chat_gap_fills",
            "Reads of missing events from storage by this instance's fan-out",
            self.gap_fills.clone(),
        );
        r.register(
            "chat_broker_delay_seconds",
            "From an event's stamp on another instance (before its commit) to its arrival here",
            self.broker_delay_seconds.clone(),
        );
    }

    /// Where an event's time goes.
    fn register_latency(&mut self) {
        let r = &mut self.registry;
        r.register(
            "chat_fanout_seconds",
            "Time to queue one event for every member of its room",
            self.fanout_seconds.clone(),
        );
        r.register(
            "chat_stage_seconds",
            "Time an event spends in each step from its frame to its readers' sockets: `queued` \
             (frame read -> in the writer's queue), `committed` (-> its batch committed), \
             `fanned_out` (-> in every reader's queue here), `written` (-> on the socket)",
            self.stages.clone(),
        );
    }

    pub fn frame_in(&self, kind: &'static str) {
        self.frames_in.get_or_create(&[("type", kind)]).inc();
    }

    pub fn event_stored(&self, kind: &'static str) {
        self.events_stored.get_or_create(&[("type", kind)]).inc();
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

    /// A notice of this kind (`typing`, `read`) went to the members here, or was dropped.
    pub fn stage(&self, stage: Stage, since: Instant) {
        self.stages
            .get_or_create(&[("stage", stage.label())])
            .observe(since.elapsed().as_secs_f64());
    }

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
