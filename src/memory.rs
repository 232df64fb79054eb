//! Gives memory back to the system after a burst. glibc's allocator keeps what a burst of
//! connections freed (in per-thread arenas, between live blocks), so the process stays at its
//! peak RSS long after the clients are gone; `malloc_trim` returns those free pages. A connect
//! storm leaves the same slack between the sessions that stay (their handshakes' buffers, the
//! ENTERs' fan-out). It runs only when connections have opened or ended since the last look,
//! so a steady load pays little for it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the counts of open and ended sessions are looked at.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Until shutdown: releases freed memory whenever connections have opened or ended since the
/// last look, and at the look after.
pub async fn release_after_bursts(metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut looks = tokio::time::interval(LOOK_EVERY);
    let mut seen = opened_or_ended(&metrics);
    let mut settling = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = looks.tick() => {}
        }
        // Once more at the look after: the sessions that came or went were still being set up
        // or cleaned up (their ENTERs and LEAVEs stored and fanned out) at the first.
        let now = opened_or_ended(&metrics);
        let changed = now != seen;
        if changed || settling {
            release_freed();
        }
        settling = changed;
        seen = now;
    }
}

/// Connections open now, and those ended so far: one of them moves whenever one opens or ends.
fn opened_or_ended(metrics: &Metrics) -> (i64, u64) {
    (metrics.connections.get(), metrics.connections_closed.get())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_freed() {
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its locks; it has
    // no preconditions on the caller.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl's, macOS's) give memory back by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed() {}
