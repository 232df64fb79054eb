//! One room of one webhook: its events after the stored position, a page at a time, each sent
//! and its position stored before the next goes, so the receiver sees them in `seq` order and
//! a restart resumes after the last one it acknowledged.

use std::sync::Arc;

use dashmap::DashMap;

use super::secret::SigningKey;
use super::sender::Sender;
use crate::domain::{Event, EventFilter, RoomId, Seq, Timestamp, WebhookId, WebhookUrl};
use crate::metrics::Metrics;
use crate::store::{
    Delivered, History, PageLimit, Positions, RoomPosition, StoreError, WebhookStore,
};

/// Events read from storage at once: what one room's delivery holds in memory.
const PAGE: PageLimit = PageLimit {
    events: 100,
    bytes: 1024 * 1024,
};

/// What every room's delivery of one webhook shares.
pub(super) struct Context {
    pub id: WebhookId,
    pub url: WebhookUrl,
    pub filter: EventFilter,
    pub key: SigningKey,
    pub sender: Arc<Sender>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub positions: Arc<dyn Positions>,
    pub history: Arc<dyn History>,
    pub metrics: Arc<Metrics>,
    /// Per room: when the event it is trying to send was stored (for the lag in seconds).
    pub oldest: DashMap<RoomId, Timestamp>,
}

pub(super) enum Outcome {
    /// Every event stored when it looked was sent.
    CaughtUp,
    /// An event could not be sent (or its position not stored): try again later.
    Failed,
}

pub(super) struct RoomDelivery {
    context: Arc<Context>,
    position: RoomPosition,
    /// The last event passed over for its type and not yet stored as done with: stored with
    /// the next delivery, at the end of the page, or before a failure, not once per event.
    passed: Option<Seq>,
}

impl RoomDelivery {
    pub fn new(context: Arc<Context>, position: RoomPosition) -> Self {
        Self {
            context,
            position,
            passed: None,
        }
    }

    pub async fn run(mut self) -> Outcome {
        let room_id = self.position.room_id;
        let outcome = self.deliver().await.unwrap_or_else(|error| {
            tracing::warn!(%error, webhook = %self.context.id, %room_id, "webhook delivery paused");
            Outcome::Failed
        });
        if matches!(outcome, Outcome::CaughtUp) {
            self.context.oldest.remove(&room_id);
        }
        outcome
    }

    async fn deliver(&mut self) -> Result<Outcome, StoreError> {
        loop {
            let (room_id, after) = (self.position.room_id, self.position.delivered_seq);
            let page = self
                .context
                .history
                .page_after(room_id, after, PAGE)
                .await?;
            if page.is_empty() {
                // The room's seq says there was more, but its events are gone (erased by
                // retention, or purged with the room): nothing is left to send of them.
                if self.position.last_seq > after {
                    self.advance(self.position.last_seq).await?;
                }
                return Ok(Outcome::CaughtUp);
            }
            for event in page {
                if !self.context.filter.matches(event.kind) {
                    self.passed = Some(event.seq);
                } else if !self.send(event).await? {
                    return Ok(Outcome::Failed);
                }
            }
            if let Some(seq) = self.passed {
                self.advance(seq).await?;
            }
        }
    }

    /// Sends one event; false when it failed, which is recorded.
    async fn send(&mut self, event: Event) -> Result<bool, StoreError> {
        let context = self.context.clone();
        let Some(body) = event.to_json() else {
            return Ok(false);
        };
        context.oldest.insert(event.room_id, event.sent_at);
        let sent = context
            .sender
            .send(&context.url, &context.key, &event, body)
            .await;
        match sent {
            Ok(()) => {
                context.metrics.webhooks.delivery("delivered");
                self.advance(event.seq).await?;
                Ok(true)
            }
            Err(failure) => {
                context.metrics.webhooks.delivery(failure.label());
                if let Some(seq) = self.passed {
                    self.advance(seq).await?;
                }
                self.position.last_error = Some(failure.to_string());
                context
                    .webhooks
                    .failed(&self.position, context.id, Timestamp::now())
                    .await?;
                Ok(false)
            }
        }
    }

    /// Stores that everything through `seq` is done with.
    async fn advance(&mut self, seq: Seq) -> Result<(), StoreError> {
        let context = &self.context;
        let position = Delivered {
            webhook_id: context.id,
            room_id: self.position.room_id,
            seq,
        };
        context.positions.delivered(position).await?;
        self.position.delivered_seq = seq;
        self.position.last_error = None;
        self.passed = None;
        Ok(())
    }
}
