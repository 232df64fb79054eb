//! Which instances are alive. Each instance heartbeats in storage, on a connection of its own
//! (never behind appends, so a busy instance is not taken for dead), and looks for others that
//! have been silent for longer than the timeout: the first to find one stores a LEAVE for each
//! of its members, through its own writer, so the LEAVEs are published like any event and
//! `memberCount` drops them. So a member of an instance that died without a goodbye (kill -9,
//! a lost machine) leaves every room within the timeout plus one heartbeat.
//!
//! An instance reaps only after its own heartbeats have succeeded for a whole timeout: when
//! storage comes back after an outage, every heartbeat is old, and nobody alive may be taken
//! for dead before it has had the time to heartbeat again. An instance that finds it was taken
//! for dead anyway (its memberships are gone, their LEAVEs stored) closes its sessions, so
//! their clients reconnect and enter again, and registers anew.
//!
//! A SQLite file belongs to one process: every other instance recorded in it is an earlier run
//! of this service, reaped at start.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::store::{Liveness, StoreError};
use crate::writer::{WriteError, Writer};

/// How long one heartbeat may take before it counts as failed.
const HEARTBEAT_DEADLINE: Duration = Duration::from_secs(3);

/// How often to heartbeat, and how long a silence means death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub heartbeat: Duration,
    pub timeout: Duration,
}

impl Timing {
    pub fn of(settings: &Settings) -> Self {
        Self {
            heartbeat: settings.heartbeat(),
            timeout: settings.instance_timeout(),
        }
    }
}

/// Why this instance could not take its place at start.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Write(#[from] WriteError),
}

/// Registers this instance; on a backend of its own, also reaps its earlier runs.
pub async fn register(
    liveness: &dyn Liveness,
    writer: &Writer,
    shared_backend: bool,
) -> Result<(), RegisterError> {
    liveness.register().await?;
    if !shared_backend {
        for earlier in liveness.dead_instances(Duration::ZERO).await? {
            writer.reap(earlier, None).await?;
        }
    }
    Ok(())
}

/// What the heartbeat loop needs of its instance.
pub struct Parts {
    pub liveness: Arc<dyn Liveness>,
    pub writer: Writer,
    pub timing: Timing,
    /// Counts the times the others took this instance for dead: sessions watch it and close.
    pub evictions: Arc<watch::Sender<u64>>,
    pub metrics: Arc<Metrics>,
}

/// Heartbeats and reaps until shutdown.
pub async fn run(parts: Parts, shutdown: CancellationToken) {
    let Parts {
        liveness,
        writer,
        timing,
        evictions,
        metrics,
    } = parts;
    let mut ticks = tokio::time::interval(timing.heartbeat);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut healthy_since = Some(Instant::now());
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        healthy_since = beat(&*liveness, &metrics, &evictions, healthy_since).await;
        if healthy_since.is_some_and(|since| since.elapsed() >= timing.timeout) {
            reap_silent(&*liveness, &writer, timing.timeout).await;
        }
    }
}

/// One heartbeat; returns since when this instance has been healthy without a break (None:
/// not now). Taken for dead, it closes its sessions and registers again.
async fn beat(
    liveness: &dyn Liveness,
    metrics: &Metrics,
    evictions: &watch::Sender<u64>,
    healthy_since: Option<Instant>,
) -> Option<Instant> {
    match within(liveness.heartbeat()).await {
        Ok(true) => {
            metrics.heartbeat("ok");
            Some(healthy_since.unwrap_or_else(Instant::now))
        }
        Ok(false) => {
            metrics.heartbeat("evicted");
            tracing::error!("the other instances took this one for dead; closing its sessions");
            evictions.send_modify(|count| *count += 1);
            let registered = within(liveness.register()).await;
            registered.ok().map(|()| Instant::now())
        }
        Err(error) => {
            metrics.heartbeat("failed");
            tracing::warn!(%error, "a heartbeat failed");
            None
        }
    }
}

async fn within<T>(call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(HEARTBEAT_DEADLINE, call)
        .await
        .unwrap_or(Err(StoreError::TimedOut(HEARTBEAT_DEADLINE)))
}

async fn reap_silent(liveness: &dyn Liveness, writer: &Writer, timeout: Duration) {
    let Ok(dead) = within(liveness.dead_instances(timeout)).await else {
        return;
    };
    for instance in dead {
        if let Err(error) = writer.reap(instance, Some(timeout)).await {
            tracing::warn!(%error, %instance, "reaping a dead instance failed; trying again later");
        }
    }
}
