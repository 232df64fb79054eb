//! Receiving what the other instances stored, on one Redis connection subscribed to the
//! channels of the rooms this instance has members in, and only those: it follows the hub's
//! set of active rooms. After subscribing to a room, and after every reconnect, it has the
//! sequencer read each room's newest seq from storage, so what was published while it was not
//! listening is filled in even if no later event ever comes. Its own beats ([`super::beats`])
//! prove that what is published still arrives; when they stop, it subscribes anew.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use tokio_util::sync::CancellationToken;

use super::beats::{Beats, Verdict};
use super::broker::{Broker, REDIS_TIMEOUT};
use super::sequencer::Sequencer;
use super::wire::{Body, Envelope, channel};
use crate::domain::{Event, InstanceId, RoomId, Timestamp};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// How long to wait before connecting again, at first and at most.
pub(super) const RETRY_FIRST: Duration = Duration::from_millis(200);
pub(super) const RETRY_MAX: Duration = Duration::from_secs(2);
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
                Ok(Ok((pubsub, beating))) => {
                    retry = RETRY_FIRST;
                    let (sink, stream) = pubsub.split();
                    self.listen(sink, stream, beating, &shutdown).await;
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

    /// A subscribing connection to the Redis the broker names now, and one to the same Redis
    /// to publish the beats on.
    async fn connect(&self) -> redis::RedisResult<(redis::aio::PubSub, MultiplexedConnection)> {
        let client = self.broker.client().await?;
        let pubsub = client.get_async_pubsub().await?;
        Ok((pubsub, client.get_multiplexed_async_connection().await?))
    }

    /// Follows the active rooms and hands on what arrives, until the connection is lost or
    /// its beats stop coming back. Ready once the first beat is heard.
    async fn listen(
        &self,
        mut sink: PubSubSink,
        mut stream: PubSubStream,
        beating: MultiplexedConnection,
        shutdown: &CancellationToken,
    ) {
        let mut beats = Beats::single(self.instance);
        let mut subscribed = HashSet::new();
        let subscribing = tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(beats.channels()));
        if !matches!(subscribing.await, Ok(Ok(())))
            || self.follow(&mut sink, &mut subscribed).await.is_err()
        {
            return;
        }
        tracing::info!(rooms = subscribed.len(), "subscribed to Redis");
        let mut checks = super::beats::checks();
        loop {
            let alive = tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.hub.rooms_changed() => self.follow(&mut sink, &mut subscribed).await.is_ok(),
                message = stream.next() => match message {
                    Some(message) => {
                        let channel = message.get_channel_name().as_bytes();
                        if beats.is_beat_channel(channel) {
                            self.hear(&mut beats, channel, message.get_payload_bytes());
                        } else {
                            self.receive(message.get_payload_bytes());
                        }
                        true
                    }
                    None => false,
                },
                _ = checks.tick() => self.check(&mut beats, "PUBLISH", &beating).await,
            };
            if !alive {
                return;
            }
        }
    }

    /// Takes a beat heard back: a round is checked once it is heard on every beat channel,
    /// and the subscription is up from the first.
    pub(super) fn hear(&self, beats: &mut Beats, channel: &[u8], payload: &[u8]) {
        let before = beats.verdict();
        beats.hear(channel, payload);
        if before != Verdict::Heard && beats.verdict() == Verdict::Heard {
            self.metrics.broker_ping("ok");
            if !self.up.swap(true, Ordering::Relaxed) {
                tracing::info!("the Redis subscription carries messages");
            }
        }
    }

    /// Whether the subscription still brings what is published: the beats sent so far are
    /// heard or within the bound, and the next round goes out on every beat channel with
    /// `command` (`PUBLISH`, or `SPUBLISH` on a cluster).
    pub(super) async fn check<C>(&self, beats: &mut Beats, command: &str, connection: &C) -> bool
    where
        C: redis::aio::ConnectionLike + Clone,
    {
        if beats.verdict() == Verdict::Wedged {
            self.metrics.broker_ping("failed");
            tracing::warn!("what is published no longer reaches this instance");
            return false;
        }
        let round = beats.next_round();
        let sent = beats
            .channels()
            .iter()
            .map(|channel| publish_beat(connection.clone(), command, channel, &round));
        let sent = tokio::time::timeout(REDIS_TIMEOUT, futures_util::future::join_all(sent));
        let published = matches!(sent.await, Ok(results) if results.iter().all(Result::is_ok));
        if !published {
            self.metrics.broker_ping("failed");
        }
        published
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
        if Envelope::published_by(payload, self.instance) {
            return;
        }
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, "an unreadable message on a room's channel");
                return;
            }
        };
        match envelope.body {
            Body::Event(event) => self.arrive(event),
            Body::Events(events) => events.into_iter().for_each(|event| self.arrive(event)),
            Body::Closed { room_id, last_seq } => {
                self.metrics.broker_received.inc();
                self.sequencer.close(room_id, last_seq);
            }
            Body::Notice(notice) => {
                self.metrics.broker_received.inc();
                self.hub.notice(&notice, None);
            }
        }
    }

    /// An event another instance stored, timed from when it was stored.
    fn arrive(&self, event: Event) {
        self.metrics.broker_received.inc();
        let delay = Timestamp::now().millis() - event.sent_at.millis();
        let delay = Duration::from_millis(u64::try_from(delay).unwrap_or(0));
        self.metrics
            .broker_delay_seconds
            .observe(delay.as_secs_f64());
        self.sequencer.arrive(event);
    }
}

/// Publishes a beat's `round` on `channel` with `command` (`PUBLISH`, or `SPUBLISH` on a
/// cluster). Any answer will do: on a cluster a moving slot can hand this request another's
/// reply (see `Beats`), and whether the beat arrives is judged by hearing it.
pub(super) async fn publish_beat<C>(
    mut connection: C,
    command: &str,
    channel: &str,
    round: &str,
) -> redis::RedisResult<redis::Value>
where
    C: redis::aio::ConnectionLike,
{
    redis::cmd(command)
        .arg(channel)
        .arg(round)
        .query_async(&mut connection)
        .await
}

pub(super) fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))
}
