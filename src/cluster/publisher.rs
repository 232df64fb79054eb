//! Publishing what this instance stored, off the commit path: the writer hands each message to
//! a queue bounded in messages and in bytes, and goes on; one task publishes them, pipelined,
//! on one Redis connection. A message that finds the queue full, or whose publish fails, is
//! counted and dropped: the other instances notice the gap and read it from storage (see the
//! sequencer), so a slow or absent broker delays other instances' members but never the
//! writer, holds at most the byte bound of messages, and loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

use super::broker::{Broker, Publishing};
use crate::metrics::Metrics;

/// What may wait to be published (or be on its way): messages, and their bytes.
pub const BOUNDS: Bounds = Bounds {
    messages: 65_536,
    bytes: 64 << 20,
};
/// Most messages sent in one pipeline.
const PIPELINE: usize = 512;
/// How often an idle publisher checks that Redis still answers.
const IDLE_PING: Duration = Duration::from_secs(1);

/// How much the queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub messages: usize,
    pub bytes: usize,
}

/// A message for a channel.
struct Message {
    channel: String,
    payload: String,
}

impl Message {
    fn bytes(&self) -> usize {
        self.channel.len() + self.payload.len()
    }
}

#[derive(Clone)]
pub struct Publisher {
    queue: mpsc::Sender<Message>,
    /// Bytes queued or being published.
    held: Arc<AtomicUsize>,
    max_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Publisher {
    /// Starts the publishing task; `up` tells whether Redis answered it last time. The task
    /// ends once every `Publisher` is dropped and what they queued is published, so that on
    /// shutdown the LEAVEs stored last still reach the other instances.
    pub fn start(
        broker: Broker,
        metrics: Arc<Metrics>,
        up: Arc<AtomicBool>,
        bounds: Bounds,
    ) -> (Self, JoinHandle<()>) {
        let (queue, messages) = mpsc::channel(bounds.messages);
        let held = Arc::new(AtomicUsize::new(0));
        let task = Task {
            broker,
            connection: None,
            metrics: metrics.clone(),
            up,
            held: held.clone(),
        };
        let flushed = tokio::spawn(task.run(messages));
        let publisher = Self {
            queue,
            held,
            max_bytes: bounds.bytes,
            metrics,
        };
        (publisher, flushed)
    }

    /// Queues a message without waiting.
    pub fn publish(&self, channel: String, payload: String) {
        let message = Message { channel, payload };
        let bytes = message.bytes();
        if self.held.fetch_add(bytes, Ordering::AcqRel) + bytes > self.max_bytes {
            self.held.fetch_sub(bytes, Ordering::AcqRel);
            self.metrics.broker_unpublished.inc();
            return;
        }
        match self.queue.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.held.fetch_sub(bytes, Ordering::AcqRel);
                self.metrics.broker_unpublished.inc();
            }
            Err(TrySendError::Closed(_)) => {
                self.held.fetch_sub(bytes, Ordering::AcqRel);
            }
        }
    }
}

struct Task {
    broker: Broker,
    connection: Option<Publishing>,
    metrics: Arc<Metrics>,
    up: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
}

impl Task {
    async fn run(mut self, mut messages: mpsc::Receiver<Message>) {
        let mut batch = Vec::with_capacity(PIPELINE);
        loop {
            let received = tokio::select! {
                received = messages.recv_many(&mut batch, PIPELINE) => received,
                () = tokio::time::sleep(IDLE_PING) => {
                    self.ping().await;
                    continue;
                }
            };
            if received == 0 {
                return;
            }
            self.send(&mut batch).await;
        }
    }

    async fn send(&mut self, batch: &mut Vec<Message>) {
        let count = batch.len() as u64;
        let bytes: usize = batch.iter().map(Message::bytes).sum();
        let messages = batch
            .drain(..)
            .map(|message| (message.channel, message.payload))
            .collect();
        let failed = match self.connection().await {
            Some(mut connection) => connection.publish(messages).await as u64,
            None => count,
        };
        self.forget_unless(failed == 0);
        self.held.fetch_sub(bytes, Ordering::AcqRel);
        self.up.store(failed == 0, Ordering::Relaxed);
        self.metrics.broker_published.inc_by(count - failed);
        self.metrics.broker_unpublished.inc_by(failed);
    }

    /// Whether Redis answers; behind Sentinels, whether it is still the master (a demoted
    /// master takes PUBLISH, but its subscribers are no longer the others).
    async fn ping(&mut self) {
        let master = self.broker.moves();
        let answered = match self.connection().await {
            Some(mut connection) => connection.answers(master).await,
            None => false,
        };
        self.forget_unless(answered);
        self.up.store(answered, Ordering::Relaxed);
    }

    /// Behind Sentinels or on a cluster, a connection that failed is dropped, so the next one
    /// goes to the master, or the shards, as they are then; one Redis's reconnects by itself.
    fn forget_unless(&mut self, worked: bool) {
        if !worked && self.broker.moves() {
            self.connection = None;
        }
    }

    /// The connection, opened on first use.
    async fn connection(&mut self) -> Option<Publishing> {
        if self.connection.is_none() {
            match self.broker.publishing().await {
                Ok(connection) => self.connection = Some(connection),
                Err(error) => tracing::warn!(%error, "cannot connect to Redis to publish"),
            }
        }
        self.connection.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_broker_that_does_not_answer_holds_at_most_the_byte_bound() {
        // A listener that never answers: the publisher waits on it for the Redis timeout.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("redis://{}/", silent.local_addr().unwrap());
        let metrics = Arc::new(Metrics::new());
        let bounds = Bounds {
            messages: 1000,
            bytes: 10_000,
        };
        let up = Arc::new(AtomicBool::new(false));
        let client = Broker::Single(Box::new(redis::Client::open(url).unwrap()));
        let (publisher, _task) = Publisher::start(client, metrics.clone(), up, bounds);

        for _ in 0..20 {
            publisher.publish("c".into(), "x".repeat(999));
        }

        assert_eq!(
            metrics.broker_unpublished.get(),
            10,
            "ten fit in 10,000 bytes"
        );
        assert!(publisher.held.load(Ordering::Acquire) <= bounds.bytes);
    }
}
