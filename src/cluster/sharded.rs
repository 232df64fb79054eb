//! Subscribing on a Redis Cluster: sharded channels (`SSUBSCRIBE`, Redis 7) on the cluster's
//! own connections, one per node, not one per room. The rooms this instance has members in are
//! followed as on one Redis, their channels subscribed a partition at a time (a partition's
//! channels share a hash tag, so a slot, so one command). The redis crate follows the topology:
//! it reroutes on `MOVED`, and after a node's connection drops or slots move it subscribes
//! again; what was published meanwhile is read from storage, as after any reconnect.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, RedisResult, Value};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::CancellationToken;

use super::broker::REDIS_TIMEOUT;
use super::subscriber::{PING_EVERY, RETRY_FIRST, RETRY_MAX, Subscriber, timed_out};
use super::urls::Nodes;
use super::wire::{partition, sharded_channel};
use crate::domain::RoomId;

impl Subscriber {
    /// Connects to the cluster, and again whenever the connection is lost, until shutdown.
    pub(super) async fn run_sharded(self, nodes: Arc<Nodes>, shutdown: CancellationToken) {
        let mut retry = RETRY_FIRST;
        loop {
            let (sender, pushes) = unbounded_channel();
            let connect = async {
                let client = nodes.builder(REDIS_TIMEOUT).push_sender(sender).build()?;
                client.get_async_connection().await
            };
            let connected = tokio::select! {
                () = shutdown.cancelled() => return,
                connected = tokio::time::timeout(REDIS_TIMEOUT, connect) => connected,
            };
            match connected {
                Ok(Ok(connection)) => {
                    retry = RETRY_FIRST;
                    self.listen_sharded(connection, pushes, &shutdown).await;
                    self.up.store(false, Ordering::Relaxed);
                    if shutdown.is_cancelled() {
                        return;
                    }
                    tracing::warn!("lost the Redis Cluster subscription; reconnecting");
                }
                Ok(Err(error)) => tracing::warn!(%error, "cannot connect to the Redis Cluster"),
                Err(_) => tracing::warn!("connecting to the Redis Cluster timed out"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    /// Follows the active rooms and hands on what arrives, until the cluster stops answering.
    async fn listen_sharded(
        &self,
        mut connection: ClusterConnection,
        mut pushes: UnboundedReceiver<PushInfo>,
        shutdown: &CancellationToken,
    ) {
        let mut subscribed = HashSet::new();
        if self
            .follow_sharded(&mut connection, &mut subscribed)
            .await
            .is_err()
        {
            return;
        }
        self.up.store(true, Ordering::Relaxed);
        tracing::info!(rooms = subscribed.len(), "subscribed to the Redis Cluster");
        let mut pings =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            let alive = tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.hub.rooms_changed() => {
                    self.follow_sharded(&mut connection, &mut subscribed).await.is_ok()
                }
                push = pushes.recv() => match push.map(|push| self.pushed(push)) {
                    Some(Pushed::Handled) => true,
                    Some(Pushed::Dropped(room_id)) => {
                        self.subscribe_again(&mut connection, &subscribed, room_id).await.is_ok()
                    }
                    Some(Pushed::Lost) | None => false,
                },
                _ = pings.tick() => self.ping_cluster(&mut connection).await,
            };
            if !alive {
                return;
            }
        }
    }

    /// Hands on a message, or says what else the push means.
    fn pushed(&self, push: PushInfo) -> Pushed {
        match push.kind {
            PushKind::SMessage => {
                if let Some(Value::BulkString(payload)) = push.data.get(1) {
                    self.receive(payload);
                }
                Pushed::Handled
            }
            // The crate would subscribe there again itself, but a failover was seen to leave
            // every shard's subscriptions gone: the whole connection is opened anew.
            PushKind::Disconnection => Pushed::Lost,
            // Ours when a room lost its members here; Redis's own when the channel's slot moved
            // to another shard (a resharding), which the room's subscription must follow.
            PushKind::SUnsubscribe => match push.data.first().and_then(room_of) {
                Some(room_id) => Pushed::Dropped(room_id),
                None => Pushed::Handled,
            },
            _ => Pushed::Handled,
        }
    }

    /// Subscribes to a room's channel again if it is one this instance follows (Redis dropped
    /// it as its slot moved); what was published meanwhile is read from storage.
    async fn subscribe_again(
        &self,
        connection: &mut ClusterConnection,
        subscribed: &HashSet<RoomId>,
        room_id: RoomId,
    ) -> RedisResult<()> {
        if !subscribed.contains(&room_id) || !self.hub.active_room_ids().contains(&room_id) {
            return Ok(());
        }
        tokio::time::timeout(
            REDIS_TIMEOUT,
            connection.ssubscribe(sharded_channel(room_id)),
        )
        .await
        .map_err(|_| timed_out())??;
        tokio::spawn(self.sequencer.clone().sync(vec![room_id]));
        Ok(())
    }

    async fn ping_cluster(&self, connection: &mut ClusterConnection) -> bool {
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(connection);
        let answered = matches!(tokio::time::timeout(REDIS_TIMEOUT, ping).await, Ok(Ok(_)));
        self.metrics
            .broker_ping(if answered { "ok" } else { "failed" });
        answered
    }

    /// Subscribes to the channels of the rooms that gained members here and unsubscribes from
    /// those that lost them, a partition per command; the new ones are synced with storage.
    async fn follow_sharded(
        &self,
        connection: &mut ClusterConnection,
        subscribed: &mut HashSet<RoomId>,
    ) -> RedisResult<()> {
        let active: HashSet<RoomId> = self.hub.active_room_ids().into_iter().collect();
        let joined: Vec<RoomId> = active.difference(subscribed).copied().collect();
        let gone: Vec<RoomId> = subscribed.difference(&active).copied().collect();
        for channels in by_partition(&joined) {
            tokio::time::timeout(REDIS_TIMEOUT, connection.ssubscribe(channels))
                .await
                .map_err(|_| timed_out())??;
        }
        if !joined.is_empty() {
            subscribed.extend(&joined);
            tokio::spawn(self.sequencer.clone().sync(joined));
        }
        for channels in by_partition(&gone) {
            tokio::time::timeout(REDIS_TIMEOUT, connection.sunsubscribe(channels))
                .await
                .map_err(|_| timed_out())??;
        }
        for room_id in gone {
            subscribed.remove(&room_id);
        }
        Ok(())
    }
}

/// The rooms' sharded channels, grouped by partition.
fn by_partition(rooms: &[RoomId]) -> Vec<Vec<String>> {
    let mut groups: BTreeMap<u128, Vec<String>> = BTreeMap::new();
    for room_id in rooms {
        groups
            .entry(partition(*room_id))
            .or_default()
            .push(sharded_channel(*room_id));
    }
    groups.into_values().collect()
}

/// What a push means to the subscription.
enum Pushed {
    /// A message handed on, or a confirmation.
    Handled,
    /// This room's channel is no longer subscribed to.
    Dropped(RoomId),
    /// A node's connection dropped.
    Lost,
}

/// The room a sharded channel's name (`chat:{p<n>}:room:<roomId>`) names.
fn room_of(channel: &Value) -> Option<RoomId> {
    let Value::BulkString(name) = channel else {
        return None;
    };
    let name = std::str::from_utf8(name).ok()?;
    let (_, room) = name.split_once(":room:")?;
    RoomId::parse(room).ok()
}
