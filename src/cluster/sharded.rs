//! Subscribing on a Redis Cluster: sharded channels (`SSUBSCRIBE`, Redis 7) on the cluster's
//! own connections, one per node, not one per room. The rooms this instance has members in are
//! followed as on one Redis, their channels subscribed a partition at a time (a partition's
//! channels share a hash tag, so a slot, so one command). The redis crate follows the topology:
//! it reroutes on `MOVED`, and after a node's connection drops it subscribes again; channels
//! whose slots moved are followed by [`super::moves`]. What was published meanwhile is read
//! from storage, as after any reconnect. A beat channel per partition checks every shard's
//! connection end to end.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, RedisResult};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::CancellationToken;

use super::beats::Beats;
use super::broker::REDIS_TIMEOUT;
use super::moves::Pushed;
use super::subscriber::{RETRY_FIRST, RETRY_MAX, Subscriber, timed_out};
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

    /// Follows the active rooms and hands on what arrives, until the cluster stops answering
    /// or a shard's beats stop coming back. Ready once the first beats are heard on every
    /// partition.
    async fn listen_sharded(
        &self,
        mut connection: ClusterConnection,
        mut pushes: UnboundedReceiver<PushInfo>,
        shutdown: &CancellationToken,
    ) {
        let mut beats = Beats::sharded(self.instance);
        let mut subscribed = HashSet::new();
        if self.beat_channels(&connection, &beats).await.is_err()
            || self
                .follow_sharded(&mut connection, &mut subscribed)
                .await
                .is_err()
        {
            return;
        }
        tracing::info!(rooms = subscribed.len(), "subscribed to the Redis Cluster");
        let mut checks = super::beats::checks();
        loop {
            let alive = tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.hub.rooms_changed() => {
                    self.follow_sharded(&mut connection, &mut subscribed).await.is_ok()
                }
                push = pushes.recv() => match push.map(|push| self.pushed(push, &mut beats)) {
                    Some(Pushed::Handled) => true,
                    Some(Pushed::Dropped(dropped)) => {
                        self.dropped(&mut connection, &subscribed, &mut beats, dropped)
                            .await
                            .is_ok()
                    }
                    Some(Pushed::Lost) | None => false,
                },
                _ = checks.tick() => {
                    self.unconfirmed_again(&mut connection, &subscribed, &mut beats).await.is_ok()
                        && self.check(&mut beats, "SPUBLISH", &connection).await
                }
            };
            if !alive {
                return;
            }
        }
    }

    /// Subscribes to every partition's beat channel, each its own slot, all at once.
    async fn beat_channels(
        &self,
        connection: &ClusterConnection,
        beats: &Beats,
    ) -> RedisResult<()> {
        let subscribing = beats.channels().iter().map(|channel| {
            let mut connection = connection.clone();
            async move { connection.ssubscribe(channel).await }
        });
        let subscribed =
            tokio::time::timeout(REDIS_TIMEOUT, futures_util::future::join_all(subscribing))
                .await
                .map_err(|_| timed_out())?;
        subscribed.into_iter().collect()
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
