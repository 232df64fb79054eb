//! How the writer takes commands from its queue: what has queued up, and, with a commit wait,
//! what joins a batch while it waits.

use std::time::Duration;

use tokio::sync::mpsc;

use super::fine_sleep::FineSleep;
use crate::metrics::Metrics;
use crate::writer::Command;

/// Takes up to `max` queued commands, waiting for one at most `wait` (None: for as long as it
/// takes; work is due afterwards in any case). False once the queue is closed and empty.
pub(super) async fn receive(
    queue: &mut mpsc::Receiver<Command>,
    into: &mut Vec<Command>,
    max: usize,
    wait: Option<Duration>,
) -> bool {
    let Some(wait) = wait else {
        return queue.recv_many(into, max).await > 0;
    };
    tokio::select! {
        biased;
        received = queue.recv_many(into, max) => received > 0,
        () = tokio::time::sleep(wait) => true,
    }
}

/// Waits up to `wait` after a batch's first appends came (not a room's creation, a ping, ...)
/// for more to join them, until the batch holds `max`: a commit costs the same CPU for one
/// event or dozens (the statements, the pages written to the log, the fsync, and the wake-ups
/// around each), so fewer, larger commits spend less per event, each waiting up to `wait`
/// longer. A full batch goes at once.
pub(super) async fn gather(
    queue: &mut mpsc::Receiver<Command>,
    into: &mut Vec<Command>,
    max: usize,
    wait: Duration,
    timer: &mut FineSleep,
    metrics: &Metrics,
) {
    let batched = into.first().is_some_and(Command::is_batched);
    if wait.is_zero() || !batched {
        return;
    }
    let waited = timer.sleep(wait);
    tokio::pin!(waited);
    while into.len() < max {
        let before = into.len();
        tokio::select! {
            biased;
            () = &mut waited => return,
            received = queue.recv_many(into, max - before) => {
                if received == 0 {
                    return;
                }
            }
        }
        taken(&into[before..], metrics);
    }
}

/// Counts commands as taken from the queue, as they are: a batch's first at once, those that
/// join it while it waits as they come.
pub(super) fn taken(commands: &[Command], metrics: &Metrics) {
    for command in commands {
        metrics.writer_taken(command.name());
    }
}
