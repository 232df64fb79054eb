//! `CHAT_DURABILITY=os` on SQLite: commits are not flushed, so the WAL is checkpointed into
//! the database file in the background, not by the writer (which would stall on the flush).

use std::time::{Duration, Instant};

use crate::helpers::{WAIT, connect};
use crate::process::ChatProcess;

/// TALKs in the burst, and the size of each: together about 1 MB, far below the writer's own
/// checkpoint (10,000 pages, about 40 MB), so only the background checkpoint copies them.
const TALKS: usize = 500;
const TEXT_BYTES: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_os_durability_what_is_stored_reaches_the_database_file_in_the_background() {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("chat.db");
    let url = format!("sqlite://{}", path.display());
    let app = ChatProcess::start(&[("DATABASE_URL", &url), ("CHAT_DURABILITY", "os")]);
    let room_id = app.create_room(None).await;
    let mut alice = connect(app.port).await;
    alice.enter(&room_id, "alice").await;
    alice.next_of_type("ENTER").await;
    let file_size = || std::fs::metadata(&path).expect("the database file").len();
    let before = file_size();

    let text = "x".repeat(TEXT_BYTES);
    for _ in 0..TALKS {
        alice.talk(&room_id, "alice", &text).await;
    }
    for _ in 0..TALKS {
        alice.next_of_type("TALK").await;
    }
    let started = Instant::now();
    while file_size() < before + (TALKS * TEXT_BYTES) as u64 {
        assert!(
            started.elapsed() < WAIT,
            "the database file stayed at {} bytes (from {before})",
            file_size()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
