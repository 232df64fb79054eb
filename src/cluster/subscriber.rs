//! Receiving what the other instances stored, on one Redis connection subscribed to the
//! channels of the rooms this instance has members in, and only those: it follows the hub's
//! set of active rooms. After subscribing to a room, and after every reconnect, it has the
//! sequencer read each room's newest seq from storage, so what was published while it was not
//! listening is filled in even if no later event ever comes.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio_util::sync::CancellationToken;

use super::broker::{Broker, REDIS_TIMEOUT};
use super::sequencer::Sequencer;
use super::wire::{Body, Envelope, channel};
use crate::domain::{InstanceId, RoomId, Timestamp};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// How long to wait before connecting again, at first and at most.
pub(super) const RETRY_FIRST: Duration = Duration::from_millis(200);
pub(super) const RETRY_MAX: Duration = Duration::from_secs(2);
/// How often the subscribed connection is checked: a broker that vanished without closing it
/// would otherwise look like a quiet one.
pub(super) const PING_EVERY: Duration = Duration::from_secs(5);

pub struct Subscriber {
    pub broker: Broker,
    pub instance: InstanceId,
    pub hub: Arc<Hub>,
    pub sequencer: Arc<Sequencer>,
    pub metrics: Arc<Metrics>,
    /// Whether it is connected and subscribed.
    pub up: Arc<AtomicBool>,
}

impl Subscriber {
    /// Connects, and reconnects whenever the connection is lost, until shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Broker::Cluster(nodes) = &self.broker {
            let nodes = nodes.clone();
            return self.run_sharded(nodes, shutdown).await;
        }
        let mut retry = RETRY_FIRST;
        loop {
            let connected = tokio::select! {
                () = shutdown.cancelled() => return,
                connected = tokio::time::timeout(REDIS_TIMEOUT, self.connect()) => connected,
            };
            match connected {
                Ok(Ok(pubsub)) => {
                    retry = RETRY_FIRST;
                    let (sink, stream) = pubsub.split();
                    self.listen(sink, stream, &shutdown).await;
                    self.up.store(false, Ordering::Relaxed);
                    if shutdown.is_cancelled() {
                        return;
                    }
                    tracing::warn!("lost the Redis subscription; reconnecting");
                }
                Ok(Err(error)) => tracing::warn!(%error, "cannot connect to Redis to subscribe"),
                Err(_) => tracing::warn!("connecting to Redis timed out"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    /// A subscribing connection to the Redis the broker names now.
    async fn connect(&self) -> redis::RedisResult<redis::aio::PubSub> {
        self.broker.client().await?.get_async_pubsub().await
    }

    /// Follows the active rooms and hands on what arrives, until the connection is lost.
    async fn listen(
        &self,
        mut sink: PubSubSink,
        mut stream: PubSubStream,
        shutdown: &CancellationToken,
    ) {
        let mut subscribed = HashSet::new();
        if self.follow(&mut sink, &mut subscribed).await.is_err() {
            return;
        }
        self.up.store(true, Ordering::Relaxed);
        tracing::info!(rooms = subscribed.len(), "subscribed to Redis");
        let mut pings =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            let alive = tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.hub.rooms_changed() => self.follow(&mut sink, &mut subscribed).await.is_ok(),
                message = stream.next() => match message {
                    Some(message) => {
                        self.receive(message.get_payload_bytes());
                        true
                    }
                    None => false,
                },
                _ = pings.tick() => self.ping(&mut sink).await,
            };
            if !alive {
                return;
            }
        }
    }

    /// Whether the subscribing connection still answers. Subscribed, Redis answers PING with
    /// an array, not a status: any answer will do.
    async fn ping(&self, sink: &mut PubSubSink) -> bool {
        let ping = tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<redis::Value>());
        let answered = matches!(ping.await, Ok(Ok(_)));
        self.metrics
            .broker_ping(if answered { "ok" } else { "failed" });
        answered
    }

    /// Subscribes to the rooms that gained members here and unsubscribes from those that lost
    /// them; the newly subscribed ones are synced with storage.
    async fn follow(
        &self,
        sink: &mut PubSubSink,
        subscribed: &mut HashSet<RoomId>,
    ) -> redis::RedisResult<()> {
        let active: HashSet<RoomId> = self.hub.active_room_ids().into_iter().collect();
        let joined: Vec<RoomId> = active.difference(subscribed).copied().collect();
        let gone: Vec<RoomId> = subscribed.difference(&active).copied().collect();
        if !joined.is_empty() {
            let channels: Vec<String> = joined.iter().copied().map(channel).collect();
            tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(channels))
                .await
                .map_err(|_| timed_out())??;
            subscribed.extend(&joined);
            tokio::spawn(self.sequencer.clone().sync(joined));
        }
        if !gone.is_empty() {
            let channels: Vec<String> = gone.iter().copied().map(channel).collect();
            tokio::time::timeout(REDIS_TIMEOUT, sink.unsubscribe(channels))
                .await
                .map_err(|_| timed_out())??;
            for room_id in gone {
                subscribed.remove(&room_id);
            }
        }
        Ok(())
    }

    pub(super) fn receive(&self, payload: &[u8]) {
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, "an unreadable message on a room's channel");
                return;
            }
        };
        if envelope.sent_by(self.instance) {
            return;
        }
        self.metrics.broker_received.inc();
        match envelope.body {
            Body::Event(event) => {
                let delay = Timestamp::now().millis() - event.sent_at.millis();
                let delay = Duration::from_millis(u64::try_from(delay).unwrap_or(0));
                self.metrics
                    .broker_delay_seconds
                    .observe(delay.as_secs_f64());
                self.sequencer.arrive(event);
            }
            Body::Closed { room_id, last_seq } => self.sequencer.close(room_id, last_seq),
            Body::Notice(notice) => {
                self.hub.notice(&notice, None);
            }
        }
    }
}

pub(super) fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))
}
