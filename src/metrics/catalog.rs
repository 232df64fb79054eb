//! Every metric's name and help text, by group: what `/metrics` shows.

use super::Metrics;

impl Metrics {
    pub(super) fn register_all(&mut self) {
        self.register_sessions();
        self.register_frames();
        self.register_storage();
        self.register_moderation();
        self.register_cluster();
        self.register_latency();
        self.webhooks.register(&mut self.registry);
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

    /// Room rules: what moderators did, and whom it removed.
    fn register_moderation(&mut self) {
        let r = &mut self.registry;
        r.register(
            "chat_moderation_actions",
            "MODERATION events stored, by action (grant, revoke, kick, ban, unban, mute, unmute)",
            self.moderation_actions.clone(),
        );
        r.register(
            "chat_removals",
            "Sessions removed from a room by a kick, a ban or a revoked role, by reason",
            self.removals.clone(),
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
        r.register(
            "chat_retention_erasures",
            "Steps of erasing events past their room's retention (each up to 1,000 events of one room)",
            self.retention_erasures.clone(),
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
            "Messages published to the broker for the other instances (each carries one or \
             more events of one room, a notice or a room's closing)",
            self.broker_published.clone(),
        );
        r.register(
            "chat_broker_unpublished",
            "Messages dropped or failed on the way to the broker (recovered from storage)",
            self.broker_unpublished.clone(),
        );
        r.register(
            "chat_broker_pings",
            "Checks of this instance's Redis subscription (a beat to itself every 2 s), by result",
            self.broker_pings.clone(),
        );
        r.register(
            "chat_broker_received",
            "Events, notices and room closings received from the other instances",
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
            self.stages.family.clone(),
        );
    }
}
