//! What the settings make of the service's bounds: how many replays read storage at once, the
//! REST limiter, the writer's queue and batches.

use std::sync::Arc;

use governor::{Quota, RateLimiter};
use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::state::HttpLimiter;
use crate::writer::{self, BatchLimits};

/// Turns at the read pool for replays: half its connections.
pub(super) fn replay_turns(settings: &Settings) -> Arc<Semaphore> {
    let turns = (settings.db_max_connections as usize / 2).max(1);
    Arc::new(Semaphore::new(turns))
}

/// The per-client REST limiter the settings call for; None when rate limits are off.
pub(super) fn http_limiter(settings: &Settings) -> Option<Arc<HttpLimiter>> {
    let per_minute = settings.http_quota()?;
    Some(Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))))
}

/// The writer's queue, and batches of half a session queue.
pub(super) fn writer_options(settings: &Settings) -> writer::Options {
    writer::Options {
        queue: settings.write_queue,
        batch: BatchLimits::for_session_queue(settings.session_queue, settings.session_queue_bytes),
        purge_delay: settings.purge_delay(),
        default_retention: settings.retention_max_age,
        retention_check: settings.retention_check(),
        commit_wait: settings.commit_wait(),
    }
}
