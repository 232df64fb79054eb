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

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::WebhookSettings;
use crate::domain::{InstanceId, WebhookId};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, WebhookRecord, WebhookStore};

pub use secret::{NewSecret, Sealer, SecretError};
pub use sender::Sender;

/// What the dispatcher needs.
pub struct Parts {
    pub instance: InstanceId,
    pub webhooks: Arc<dyn WebhookStore>,
    pub history: Arc<dyn Store>,
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

/// Takes and renews leases three times per lease, delivering the webhooks it holds, until
/// `shutdown`; then stops them and gives their leases up.
pub async fn run(parts: Parts, shutdown: CancellationToken) {
    let mut held: HashMap<WebhookId, Held> = HashMap::new();
    let mut ticks = tokio::time::interval(parts.settings.lease() / 3);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {
                if let Err(error) = round(&parts, &mut held).await {
                    tracing::warn!(%error, "webhook leases could not be renewed");
                }
                // Stops a quarter lease before it runs out unrenewed, so another instance
                // that takes it over does not find this one still sending.
                let cutoff = Instant::now() + parts.settings.lease() / 4;
                held.retain(|id, webhook| keep(*id, webhook, webhook.until > cutoff));
            }
        }
    }
    for (id, webhook) in held {
        webhook.stop.cancel();
        let _ = webhook.task.await;
        if let Err(error) = parts.webhooks.release(id, parts.instance).await {
            tracing::warn!(%error, webhook = %id, "a webhook lease could not be given up");
        }
    }
}

/// One look at every webhook: those deleted stop, those whose lease this instance takes or
/// renews run.
async fn round(parts: &Parts, held: &mut HashMap<WebhookId, Held>) -> Result<(), StoreError> {
    let webhooks = parts.webhooks.webhooks().await?;
    held.retain(|id, webhook| {
        let exists = webhooks.iter().any(|record| record.webhook_id == *id);
        keep(*id, webhook, exists)
    });
    for record in webhooks {
        let id = record.webhook_id;
        let asked = Instant::now();
        let claimed = parts
            .webhooks
            .claim(id, parts.instance, parts.settings.lease())
            .await?;
        match (claimed, held.get_mut(&id)) {
            (true, Some(webhook)) => webhook.until = asked + parts.settings.lease(),
            (true, None) => {
                if let Some(webhook) = start(parts, record, asked) {
                    held.insert(id, webhook);
                }
            }
            (false, Some(webhook)) => {
                keep(id, webhook, false);
                held.remove(&id);
            }
            (false, None) => {}
        }
    }
    Ok(())
}

/// Whether to keep delivering; a webhook that is not kept is stopped.
fn keep(id: WebhookId, webhook: &Held, kept: bool) -> bool {
    if !kept {
        tracing::info!(webhook = %id, "webhook no longer delivered here");
        webhook.stop.cancel();
    }
    kept
}

/// Starts delivering a webhook whose lease was taken at `asked`; None when its secret does
/// not open with this server's key (it stays undelivered, and says so in the log).
fn start(parts: &Parts, record: WebhookRecord, asked: Instant) -> Option<Held> {
    let id = record.webhook_id;
    let key = match parts.sealer.open(id, &record.sealed_secret) {
        Ok(key) => key,
        Err(error) => {
            tracing::error!(%error, webhook = %id, "webhook not delivered");
            return None;
        }
    };
    let stop = CancellationToken::new();
    let worker = worker::Worker::new(parts, record, key)?;
    let task = tokio::spawn(worker.run(stop.clone()));
    Some(Held {
        stop,
        task,
        until: asked + parts.settings.lease(),
    })
}
