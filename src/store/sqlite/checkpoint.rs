//! With `CHAT_DURABILITY=os` nothing flushes SQLite's WAL but its checkpoints: they run here,
//! on a connection of their own, instead of in the writer's commits.

use std::sync::Weak;
use std::time::Duration;

use sqlx::SqliteConnection;

/// How often the WAL is checkpointed into the database. Without fsyncs of its commits, the
/// WAL is flushed only by a checkpoint, which the writer would otherwise run itself every
/// [`super::CHECKPOINT_PAGES`] and stall on (measured at 2,000 TALK/s: p99 29-36 ms that way,
/// against 7-13 ms with fsync). Here it never waits for one unless this falls behind.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Checkpoints (`PASSIVE`: never waiting on the writer or readers) every [`CHECKPOINT_EVERY`]
/// until the store is gone.
pub(super) async fn now_and_then(mut connection: SqliteConnection, store: Weak<impl Sized>) {
    let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if store.strong_count() == 0 {
            return;
        }
        let checkpoint = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)");
        if let Err(error) = checkpoint.execute(&mut connection).await {
            tracing::warn!(%error, "a WAL checkpoint failed");
        }
    }
}
