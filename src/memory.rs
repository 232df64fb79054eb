//! Gives memory back to the system after a burst. glibc's allocator keeps what a burst of
//! connections freed (in per-thread arenas, between live blocks), so the process stays at its
//! peak RSS long after the clients are gone; `malloc_trim` returns those free pages. A connect
//! storm leaves the same slack between the sessions that stay (their handshakes' buffers, the
//! ENTERs' fan-out). It runs only when connections have opened or ended, once they settle
//! (so a storm's slack goes a second or two after it), so a steady load pays little for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the counts of open and ended sessions are looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// While connections keep opening or ending, memory is released at most this often.
const CHURN_RELEASE_EVERY: Duration = Duration::from_secs(5);

/// Until shutdown: releases freed memory once connections that opened or ended have settled
/// (a look finds the counts as the last one did), so a storm's slack goes within a second or
/// two of its end; and every few seconds while they never settle.
pub async fn release_after_bursts(metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut looks = tokio::time::interval(LOOK_EVERY);
    let mut bursts = Bursts::new(opened_or_ended(&metrics), Instant::now());
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = looks.tick() => {}
        }
        if bursts.look(opened_or_ended(&metrics), Instant::now()) {
            release_freed();
        }
    }
}

/// When to release: what the looks have seen of connections opening and ending.
struct Bursts {
    seen: (i64, u64),
    /// Connections opened or ended since the last release.
    pending: bool,
    released: Instant,
}

impl Bursts {
    fn new(seen: (i64, u64), at: Instant) -> Self {
        Self {
            seen,
            pending: false,
            released: at,
        }
    }

    /// Whether to release memory now, given the counts this look finds. A release waits for
    /// a look that finds them settled: the sessions that came or went are set up or cleaned
    /// up by then (their ENTERs and LEAVEs stored and fanned out).
    fn look(&mut self, now: (i64, u64), at: Instant) -> bool {
        let changed = now != self.seen;
        self.seen = now;
        self.pending |= changed;
        let due = !changed || at.duration_since(self.released) >= CHURN_RELEASE_EVERY;
        if !(self.pending && due) {
            return false;
        }
        self.released = at;
        self.pending = changed;
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_released_once_a_burst_has_settled() {
        let start = Instant::now();
        let second = |n| start + LOOK_EVERY * n;
        let mut bursts = Bursts::new((0, 0), start);
        assert!(!bursts.look((0, 0), second(1)), "nothing happened");
        assert!(
            !bursts.look((5_000, 0), second(2)),
            "the storm is under way"
        );
        assert!(!bursts.look((8_000, 0), second(3)));
        assert!(bursts.look((8_000, 0), second(4)), "settled");
        assert!(!bursts.look((8_000, 0), second(5)), "released already");
        assert!(!bursts.look((7_999, 1), second(6)), "one left");
        assert!(bursts.look((7_999, 1), second(7)));
    }

    #[test]
    fn connections_that_never_settle_release_every_few_seconds() {
        let start = Instant::now();
        let mut bursts = Bursts::new((0, 0), start);
        let releases: Vec<u32> = (1..=12)
            .filter(|&n| bursts.look((i64::from(n), 0), start + LOOK_EVERY * n))
            .collect();
        assert_eq!(releases, vec![5, 10]);
        assert!(
            bursts.look((12, 0), start + LOOK_EVERY * 13),
            "and once more when they settle"
        );
    }
}
