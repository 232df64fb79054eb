//! Webhooks: every stored event of a webhook's rooms and types, posted to its URL in `seq`
//! order per room, at least once, never skipping one. The events table is the outbox and a
//! stored position per webhook and room says how far delivery got, so a restart, or another
//! instance, resumes where it stopped. Each webhook is delivered by one instance at a time,
//! the one holding its lease in storage; an instance that dies lets its leases run out and
//! another takes them over (at most the event in flight is sent again, with the same
//! `webhook-id`).
//!
//! Memory stays bounded whatever receivers do: per webhook, at most [`worker::PARALLEL_ROOMS`]
//! rooms are sent at once, each from one page of events read from storage, and a failing room
//! only waits (1 s doubling to 5 min) while the others go on.

pub mod address;
mod room;
pub mod secret;
mod sender;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::WebhookSettings;
use crate::domain::{InstanceId, WebhookId};
use crate::metrics::Metrics;
use crate::store::{History, Positions, StoreError, WebhookRecord, WebhookStore};

pub use secret::{NewSecret, Sealer, SecretError};
pub use sender::{Sender, install_tls_provider};
pub use worker::PARALLEL_ROOMS;

/// What the dispatcher needs.
pub struct Parts {
    pub instance: InstanceId,
    pub webhooks: Arc<dyn WebhookStore>,
    /// Where delivery positions are stored: the writer.
    pub positions: Arc<dyn Positions>,
    pub history: Arc<dyn History>,
    pub sealer: Arc<Sealer>,
    pub sender: Arc<Sender>,
    pub settings: WebhookSettings,
    pub metrics: Arc<Metrics>,
}

/// A webhook this instance delivers: its worker, and until when its lease surely holds.
struct Held {
    stop: CancellationToken,
    task: JoinHandle<()>,
    until: Instant,
}

/// The leases this instance holds, and the webhooks it cannot deliver.
struct Dispatcher {
    parts: Parts,
    held: HashMap<WebhookId, Held>,
    /// Webhooks whose secret does not open with this instance's key: never claimed here (an
    /// instance with the right key may deliver them), reported once.
    unopened: HashSet<WebhookId>,
}

/// Looks for webhooks to take every poll (so a new one starts within one), renews the leases
/// it holds three times per lease, and delivers the webhooks it holds, until `shutdown`; then
/// stops them and gives their leases up.
pub async fn run(parts: Parts, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(parts.settings.poll().min(parts.settings.lease() / 3));
    let mut dispatcher = Dispatcher {
        parts,
        held: HashMap::new(),
        unopened: HashSet::new(),
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => dispatcher.tick().await,
        }
    }
    dispatcher.stop().await;
}

impl Dispatcher {
    async fn tick(&mut self) {
        if let Err(error) = self.round().await {
            tracing::warn!(%error, "webhook leases could not be renewed");
        }
        // Stops a quarter lease before it runs out unrenewed, so another instance that takes
        // it over does not find this one still sending.
        let cutoff = Instant::now() + self.parts.settings.lease() / 4;
        self.held
            .retain(|id, webhook| keep(*id, webhook, webhook.until > cutoff));
    }

    /// One look at every webhook: those deleted stop, those whose lease this instance takes
    /// or renews run.
    async fn round(&mut self) -> Result<(), StoreError> {
        let webhooks = self.parts.webhooks.webhooks().await?;
        self.held.retain(|id, webhook| {
            let exists = webhooks.iter().any(|record| record.webhook_id == *id);
            keep(*id, webhook, exists)
        });
        for record in webhooks {
            let id = record.webhook_id;
            if self.unopened.contains(&id) {
                continue;
            }
            let asked = Instant::now();
            let lease = self.parts.settings.lease();
            let renewed_lately = self
                .held
                .get(&id)
                .is_some_and(|held| held.until.saturating_duration_since(asked) > lease * 2 / 3);
            if renewed_lately {
                continue;
            }
            let claimed = self.parts.webhooks.claim(id, self.parts.instance, lease);
            match (claimed.await?, self.held.get_mut(&id)) {
                (true, Some(webhook)) => webhook.until = asked + lease,
                (true, None) => self.start(record, asked + lease).await?,
                (false, Some(webhook)) => {
                    keep(id, webhook, false);
                    self.held.remove(&id);
                }
                (false, None) => {}
            }
        }
        Ok(())
    }

    /// Starts delivering a webhook whose lease holds until `until`; one whose secret does not
    /// open with this server's key is given back and left to others.
    async fn start(&mut self, record: WebhookRecord, until: Instant) -> Result<(), StoreError> {
        let id = record.webhook_id;
        let key = match self.parts.sealer.open(id, &record.sealed_secret) {
            Ok(key) => key,
            Err(error) => {
                tracing::error!(%error, webhook = %id, "webhook not delivered by this instance");
                self.unopened.insert(id);
                return self.parts.webhooks.release(id, self.parts.instance).await;
            }
        };
        let Some(worker) = worker::Worker::new(&self.parts, record, key) else {
            tracing::error!(webhook = %id, "webhook not delivered: its stored url does not parse");
            self.unopened.insert(id);
            return self.parts.webhooks.release(id, self.parts.instance).await;
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(worker.run(stop.clone()));
        self.held.insert(id, Held { stop, task, until });
        Ok(())
    }

    async fn stop(self) {
        for (id, webhook) in self.held {
            webhook.stop.cancel();
            let _ = webhook.task.await;
            if let Err(error) = self.parts.webhooks.release(id, self.parts.instance).await {
                tracing::warn!(%error, webhook = %id, "a webhook lease could not be given up");
            }
        }
    }
}

/// Whether to keep delivering; a webhook that is not kept is stopped.
fn keep(id: WebhookId, webhook: &Held, kept: bool) -> bool {
    if !kept {
        tracing::info!(webhook = %id, "webhook no longer delivered here");
        webhook.stop.cancel();
    }
    kept
}
