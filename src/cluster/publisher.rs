//! Publishing what this instance stored, off the commit path: the writer hands each message to
//! a bounded queue and goes on; one task publishes them, pipelined, on one Redis connection.
//! A message that finds the queue full, or whose publish fails, is counted and dropped: the
//! other instances notice the gap and read it from storage (see the sequencer), so a slow or
//! absent broker delays other instances' members but never the writer, and loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;

/// Messages waiting to be published.
const QUEUE: usize = 65_536;
/// Most messages sent in one pipeline.
const PIPELINE: usize = 512;
/// How long connecting, or one round trip, may take before Redis counts as unreachable.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often an idle publisher checks that Redis still answers.
const IDLE_PING: Duration = Duration::from_secs(1);

/// A message for a channel.
struct Message {
    channel: String,
    payload: String,
}

#[derive(Clone)]
pub struct Publisher {
    queue: mpsc::Sender<Message>,
    metrics: Arc<Metrics>,
}

impl Publisher {
    /// Starts the publishing task; `up` tells whether Redis answered it last time. The task
    /// ends once every `Publisher` is dropped and what they queued is published, so that on
    /// shutdown the LEAVEs stored last still reach the other instances.
    pub fn start(
        client: redis::Client,
        metrics: Arc<Metrics>,
        up: Arc<AtomicBool>,
    ) -> (Self, JoinHandle<()>) {
        let (queue, messages) = mpsc::channel(QUEUE);
        let task = Task {
            client,
            connection: None,
            metrics: metrics.clone(),
            up,
        };
        let flushed = tokio::spawn(task.run(messages));
        (Self { queue, metrics }, flushed)
    }

    /// Queues a message without waiting.
    pub fn publish(&self, channel: String, payload: String) {
        match self.queue.try_send(Message { channel, payload }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.broker_unpublished.inc();
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

struct Task {
    client: redis::Client,
    connection: Option<ConnectionManager>,
    metrics: Arc<Metrics>,
    up: Arc<AtomicBool>,
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
        let mut pipe = redis::pipe();
        for message in batch.drain(..) {
            pipe.publish(message.channel, message.payload).ignore();
        }
        let sent = match self.connection().await {
            Some(mut connection) => pipe.query_async::<()>(&mut connection).await.is_ok(),
            None => false,
        };
        self.up.store(sent, Ordering::Relaxed);
        let counter = if sent {
            &self.metrics.broker_published
        } else {
            &self.metrics.broker_unpublished
        };
        counter.inc_by(count);
    }

    async fn ping(&mut self) {
        let answered = match self.connection().await {
            Some(mut connection) => redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .is_ok(),
            None => false,
        };
        self.up.store(answered, Ordering::Relaxed);
    }

    /// The connection, opened on first use; it reconnects by itself after that.
    async fn connection(&mut self) -> Option<ConnectionManager> {
        if self.connection.is_none() {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(REDIS_TIMEOUT))
                .set_response_timeout(Some(REDIS_TIMEOUT))
                .set_number_of_retries(1);
            match self.client.get_connection_manager_with_config(config).await {
                Ok(connection) => self.connection = Some(connection),
                Err(error) => tracing::warn!(%error, "cannot connect to Redis to publish"),
            }
        }
        self.connection.clone()
    }
}
