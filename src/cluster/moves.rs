//! What a Redis Cluster's pushes mean to the subscription, and following the channels whose
//! slots move: Redis drops a sharded channel's subscribers when its slot moves to another
//! shard, and the subscription makes its whole partition again on the new one and checks it
//! with a beat.

use std::collections::HashSet;

use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, RedisResult, Value};

use super::beats::{Beats, Rejoin};
use super::broker::REDIS_TIMEOUT;
use super::subscriber::{Subscriber, publish_beat, timed_out};
use super::wire::{partition, sharded_channel};
use crate::domain::RoomId;

impl Subscriber {
    /// Hands on a message or a beat, or says what else the push means.
    pub(super) fn pushed(&self, push: PushInfo, beats: &mut Beats) -> Pushed {
        match push.kind {
            PushKind::SMessage => {
                if let [Value::BulkString(channel), Value::BulkString(payload), ..] =
                    push.data.as_slice()
                {
                    if beats.is_beat_channel(channel) {
                        self.hear(beats, channel, payload);
                    } else {
                        self.receive(payload);
                    }
                }
                Pushed::Handled
            }
            // The crate would subscribe there again itself, but a failover was seen to leave
            // every shard's subscriptions gone: the whole connection is opened anew.
            PushKind::Disconnection => Pushed::Lost,
            // Ours when a room lost its members here; Redis's own when the channel's slot moved
            // to another shard (a resharding), which the subscription must follow.
            PushKind::SUnsubscribe => match push.data.first() {
                Some(Value::BulkString(name)) if beats.is_beat_channel(name) => beats
                    .position(name)
                    .map_or(Pushed::Handled, |at| Pushed::Dropped(Dropped::Beat(at))),
                Some(channel) => room_of(channel).map_or(Pushed::Handled, |room_id| {
                    Pushed::Dropped(Dropped::Room(room_id))
                }),
                None => Pushed::Handled,
            },
            _ => Pushed::Handled,
        }
    }

    /// Follows a channel Redis dropped as its slot moved: a beat channel always, a room's if
    /// this instance still follows it; either way its whole partition.
    pub(super) async fn dropped(
        &self,
        connection: &mut ClusterConnection,
        subscribed: &HashSet<RoomId>,
        beats: &mut Beats,
        dropped: Dropped,
    ) -> RedisResult<()> {
        let at = match dropped {
            Dropped::Beat(at) => at,
            Dropped::Room(room_id)
                if subscribed.contains(&room_id)
                    && self.hub.active_room_ids().contains(&room_id) =>
            {
                partition_at(room_id)
            }
            Dropped::Room(_) => return Ok(()),
        };
        self.rejoin(connection, subscribed, beats, at, Rejoin::Moved)
            .await
    }

    /// Subscribes once more to the partitions subscribed again a round ago whose beats have not
    /// come since.
    pub(super) async fn unconfirmed_again(
        &self,
        connection: &mut ClusterConnection,
        subscribed: &HashSet<RoomId>,
        beats: &mut Beats,
    ) -> RedisResult<()> {
        for at in beats.unconfirmed() {
            tracing::info!(
                partition = at,
                "a partition that moved is subscribed once more"
            );
            self.rejoin(connection, subscribed, beats, at, Rejoin::Unheard)
                .await?;
        }
        Ok(())
    }

    /// Subscribes again to a partition's beat channel and to the channels of the rooms of it
    /// that this instance follows, in one command, and probes it with a beat at once. They
    /// share a slot, so the command ran on the slot's node for all of them or for none, and a
    /// beat heard on the partition after it proves the rooms' subscriptions too (its reply
    /// does not: see [`Beats`]). What was published to the rooms meanwhile is read from
    /// storage.
    async fn rejoin(
        &self,
        connection: &mut ClusterConnection,
        subscribed: &HashSet<RoomId>,
        beats: &mut Beats,
        at: usize,
        why: Rejoin,
    ) -> RedisResult<()> {
        let rooms: Vec<RoomId> = subscribed
            .iter()
            .copied()
            .filter(|room_id| partition_at(*room_id) == at)
            .collect();
        let beat_channel = beats.channels()[at].clone();
        let mut channels = vec![beat_channel.clone()];
        channels.extend(rooms.iter().copied().map(sharded_channel));
        tokio::time::timeout(REDIS_TIMEOUT, connection.ssubscribe(channels))
            .await
            .map_err(|_| timed_out())??;
        if !rooms.is_empty() {
            tokio::spawn(self.sequencer.clone().sync(rooms));
        }
        if let Some(round) = beats.rejoined(at, why) {
            // Whether it went out is not looked at: the beat coming back is what counts.
            let probe = publish_beat(connection.clone(), "SPUBLISH", &beat_channel, &round);
            let _ = tokio::time::timeout(REDIS_TIMEOUT, probe).await;
        }
        Ok(())
    }
}

/// What a push means to the subscription.
pub(super) enum Pushed {
    /// A message handed on, or a confirmation.
    Handled,
    /// This channel is no longer subscribed to.
    Dropped(Dropped),
    /// A node's connection dropped.
    Lost,
}

/// A channel no longer subscribed to.
pub(super) enum Dropped {
    /// One of the beat channels, by its partition.
    Beat(usize),
    Room(RoomId),
}

/// A room's partition, as a position in [`Beats::channels`].
pub(super) fn partition_at(room_id: RoomId) -> usize {
    usize::try_from(partition(room_id)).unwrap_or_default()
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
