//! Fan-out as a stage of its own. The writer hands over what each commit stored (and rooms it
//! closed) in the order it stored them, and goes on to its next batch while one task fans them
//! out, in that order: a room's events still reach fan-out in `seq` order, and the commit loop
//! no longer waits on fan-out (queueing an event for every member here, or encoding it for the
//! broker), so the two run on both cores at once.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::domain::{Event, Notice, RoomId, Seq};
use crate::hub::Fanout;
use crate::metrics::{Metrics, Stage};

/// Batches handed over and not yet fanned out, beyond the one being fanned out: the writer
/// commits at most this far ahead of fan-out, so a room's members never get several batches
/// queued at once because fan-out lagged (a batch is at most half a session queue).
const AHEAD: usize = 1;

/// One handover, in the order the writer stored it.
enum Handoff {
    Stored {
        events: Vec<Event>,
        notices: Vec<Notice>,
        committed: Instant,
    },
    Closed {
        room_id: RoomId,
        last_seq: Seq,
    },
    /// Answered once everything handed over before it is fanned out.
    Flushed(oneshot::Sender<()>),
}

/// The writer's end of the fan-out stage.
pub(super) struct Handoffs {
    sender: mpsc::Sender<Handoff>,
    task: JoinHandle<()>,
}

impl Handoffs {
    pub(super) fn start(fanout: Arc<dyn Fanout>, metrics: Arc<Metrics>) -> Self {
        let (sender, receiver) = mpsc::channel(AHEAD);
        let task = tokio::spawn(fan_out(fanout, metrics, receiver));
        Self { sender, task }
    }

    /// Hands over a commit's stored events and the notices it raised (waits while fan-out is
    /// [`AHEAD`] behind).
    pub(super) async fn stored(
        &self,
        events: Vec<Event>,
        notices: Vec<Notice>,
        committed: Instant,
    ) {
        if events.is_empty() && notices.is_empty() {
            return;
        }
        let stored = Handoff::Stored {
            events,
            notices,
            committed,
        };
        self.send(stored).await;
    }

    /// Hands over a deleted room: its members get `CLOSED` after every event before it.
    pub(super) async fn closed(&self, room_id: RoomId, last_seq: Seq) {
        self.send(Handoff::Closed { room_id, last_seq }).await;
    }

    /// Waits until everything handed over so far is fanned out.
    pub(super) async fn flushed(&self) {
        let (done, fanned_out) = oneshot::channel();
        self.send(Handoff::Flushed(done)).await;
        let _ = fanned_out.await;
    }

    /// Waits until everything handed over is fanned out, and the stage has ended.
    pub(super) async fn finish(self) {
        drop(self.sender);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the fan-out stage failed");
        }
    }

    async fn send(&self, handoff: Handoff) {
        if self.sender.send(handoff).await.is_err() {
            tracing::error!("the fan-out stage is gone; stored events were not fanned out");
        }
    }
}

async fn fan_out(
    fanout: Arc<dyn Fanout>,
    metrics: Arc<Metrics>,
    mut handoffs: mpsc::Receiver<Handoff>,
) {
    while let Some(handoff) = handoffs.recv().await {
        match handoff {
            Handoff::Stored {
                events,
                notices,
                committed,
            } => {
                for event in &events {
                    fanout.publish(event);
                    metrics.stage(Stage::FannedOut, committed);
                }
                for notice in &notices {
                    fanout.notify(notice, None);
                }
            }
            Handoff::Closed { room_id, last_seq } => fanout.close_room(room_id, last_seq),
            Handoff::Flushed(done) => {
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc as blocking;
    use std::time::Duration;

    use super::*;
    use crate::domain::{MessageText, NewEvent, NewRoom, RoomName, Sender};
    use crate::writer::{Appended, BatchLimits, Options, Writer};

    /// Records what it is handed; its first publish waits until the test lets it go.
    struct HeldFanout {
        published: Mutex<Vec<Seq>>,
        held: Mutex<Option<blocking::Receiver<()>>>,
        entered: Mutex<Option<blocking::Sender<()>>>,
    }

    impl Fanout for HeldFanout {
        fn publish(&self, event: &Event) {
            let held = self.held.lock().unwrap().take();
            if let Some(held) = held {
                if let Some(entered) = self.entered.lock().unwrap().take() {
                    let _ = entered.send(());
                }
                let _ = held.recv();
            }
            self.published.lock().unwrap().push(event.seq);
        }

        fn close_room(&self, _: RoomId, _: Seq) {}

        fn notify(&self, _: &Notice, _: Option<crate::domain::SessionId>) {}
    }

    async fn talk(writer: &Writer, room_id: RoomId, message: &str) -> Seq {
        let sender = Sender::parse("alice").unwrap();
        let talk = NewEvent::talk(room_id, sender, MessageText::parse(message).unwrap());
        let reply = writer.reserve().await.unwrap().append(talk);
        match reply.await.unwrap() {
            Ok(Appended::Stored(stored)) => stored.seq,
            other => panic!("not stored: {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_commits_while_fan_out_is_busy_and_fan_out_keeps_the_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::store::sqlite_in(dir.path(), 1).await;
        let metrics = Arc::new(Metrics::new());
        let (release, held) = blocking::channel();
        let (entered, publishing) = blocking::channel();
        let fanout = Arc::new(HeldFanout {
            published: Mutex::new(Vec::new()),
            held: Mutex::new(Some(held)),
            entered: Mutex::new(Some(entered)),
        });
        let options = Options {
            queue: 8,
            batch: BatchLimits::for_session_queue(8, 4096),
            purge_delay: Duration::ZERO,
            default_retention: None,
            retention_check: Duration::from_secs(10),
        };
        let (writer, task) = Writer::start(storage.writer, fanout.clone(), metrics, options);
        let room = NewRoom::public(RoomName::parse("pipelined").unwrap());
        let room_id = writer.create_room(room).await.unwrap().room_id;

        let first = talk(&writer, room_id, "one").await;
        let blocked = tokio::task::spawn_blocking(move || publishing.recv());
        blocked.await.unwrap().unwrap();
        // Fan-out is stuck in the first event; the writer still stores and answers more.
        let more = async {
            let second = talk(&writer, room_id, "two").await;
            (second, talk(&writer, room_id, "three").await)
        };
        let (second, third) = tokio::time::timeout(Duration::from_secs(10), more)
            .await
            .expect("the writer waited for fan-out before storing more");
        assert!(fanout.published.lock().unwrap().is_empty());

        release.send(()).unwrap();
        drop(writer);
        task.await.unwrap();
        assert_eq!(*fanout.published.lock().unwrap(), [first, second, third]);
    }
}
