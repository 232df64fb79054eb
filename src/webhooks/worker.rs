//! One webhook's delivery on the instance holding its lease: every poll it asks storage which
//! rooms have events after its position, and sends up to [`PARALLEL_ROOMS`] of them at once,
//! each room one event at a time (and while rooms wait for a slot, it asks again as soon as
//! one is free). A room that fails waits (1 s, doubling to 5 min) and is tried again from the
//! same event; the other rooms go on meanwhile.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Parts;
use super::room::{Context, Outcome, RoomDelivery};
use super::secret::SigningKey;
use crate::domain::{RoomId, Timestamp, WebhookUrl};
use crate::store::{RoomPosition, WebhookRecord};

/// Rooms of one webhook sent at once.
pub const PARALLEL_ROOMS: usize = 8;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(300);

/// A room that failed: when it is tried again, and how long it waited last.
struct Backoff {
    next: Instant,
    delay: Duration,
}

pub(super) struct Worker {
    context: Arc<Context>,
    poll: Duration,
    /// The rooms being sent, by their task (so a task that panicked frees its room too).
    busy: HashMap<Id, RoomId>,
    waiting: HashMap<RoomId, Backoff>,
    running: JoinSet<Outcome>,
    /// The last look left rooms behind for want of a slot: the next free slot looks again at
    /// once, not at the next poll (8 rooms a poll kept up with about 170 events a second).
    crowded: bool,
}

impl Worker {
    /// None when the stored URL no longer parses (it did when it was stored).
    pub fn new(parts: &Parts, record: WebhookRecord, key: SigningKey) -> Option<Self> {
        let url = WebhookUrl::parse(&record.url).ok()?;
        let context = Context {
            id: record.webhook_id,
            url,
            filter: record.filter,
            key,
            sender: parts.sender.clone(),
            webhooks: parts.webhooks.clone(),
            positions: parts.positions.clone(),
            history: parts.history.clone(),
            metrics: parts.metrics.clone(),
            oldest: DashMap::new(),
        };
        Some(Self {
            context: Arc::new(context),
            poll: parts.settings.poll(),
            busy: HashMap::new(),
            waiting: HashMap::new(),
            running: JoinSet::new(),
            crowded: false,
        })
    }

    /// Delivers until `stop`; what is in flight then is dropped, to be sent again by whoever
    /// holds the lease next.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(self.poll);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticks.tick() => self.look().await,
                Some(done) = self.running.join_next_with_id() => {
                    match done {
                        Ok((task, outcome)) => self.finished(task, outcome),
                        Err(error) => self.finished(error.id(), Outcome::Failed),
                    }
                    if self.crowded {
                        self.look().await;
                    }
                }
            }
        }
        self.context
            .metrics
            .webhooks
            .forget(self.context.id.to_string());
    }

    /// Starts the rooms that are behind, not being sent and not waiting, as slots allow.
    async fn look(&mut self) {
        let behind = match self.context.webhooks.behind(self.context.id).await {
            Ok(behind) => behind,
            Err(error) => {
                tracing::warn!(%error, webhook = %self.context.id, "webhook positions unreadable");
                return;
            }
        };
        self.report_lag(&behind);
        let now = Instant::now();
        self.crowded = false;
        for position in behind {
            let room_id = position.room_id;
            let ready = self
                .waiting
                .get(&room_id)
                .is_none_or(|wait| wait.next <= now);
            if self.busy.values().any(|busy| *busy == room_id) || !ready {
                continue;
            }
            if self.running.len() >= PARALLEL_ROOMS {
                self.crowded = true;
                break;
            }
            let delivery = RoomDelivery::new(self.context.clone(), position);
            let task = self.running.spawn(delivery.run());
            self.busy.insert(task.id(), room_id);
        }
    }

    fn finished(&mut self, task: Id, outcome: Outcome) {
        let Some(room_id) = self.busy.remove(&task) else {
            return;
        };
        match outcome {
            Outcome::CaughtUp => {
                self.waiting.remove(&room_id);
            }
            Outcome::Failed => {
                let delay = self
                    .waiting
                    .get(&room_id)
                    .map_or(FIRST_RETRY, |wait| (wait.delay * 2).min(LAST_RETRY));
                let next = Instant::now() + delay;
                self.waiting.insert(room_id, Backoff { next, delay });
            }
        }
    }

    fn report_lag(&self, behind: &[RoomPosition]) {
        let events = behind
            .iter()
            .map(|position| position.last_seq.get() - position.delivered_seq.get())
            .sum();
        let now = Timestamp::now().millis();
        let oldest = self.context.oldest.iter().map(|entry| entry.millis()).min();
        let seconds = oldest.map_or(0.0, |oldest| (now - oldest).max(0) as f64 / 1000.0);
        let id = self.context.id.to_string();
        self.context.metrics.webhooks.lag(id, events, seconds);
    }
}
