//! Where the broker is: one Redis (`redis://`, `rediss://`); the master a set of Sentinels
//! names (`redis+sentinel://host:port,host:port/<master name>`, `rediss+sentinel://` for TLS to
//! the master), asked again at every connect so that a failover is followed without a restart;
//! or a Redis Cluster (`redis+cluster://host:port,host:port`, `rediss+cluster://`), where each
//! room's channel is a sharded one (`SPUBLISH`, `SSUBSCRIBE`) on the shard its partition's
//! hash tag names.

use std::sync::Arc;
use std::time::Duration;

use redis::RedisResult;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::SentinelClient;
use tokio::sync::Mutex;

use super::urls::Nodes;
use super::wire::{channel, sharded_channel};
use crate::domain::RoomId;

/// How long connecting, or one round trip, may take before Redis counts as unreachable.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub enum Broker {
    /// Boxed: a client is large, and a broker is cloned into each of its tasks.
    Single(Box<redis::Client>),
    /// A client of the Sentinels, which says who the master is now.
    Sentinel(Arc<Mutex<SentinelClient>>),
    /// A Redis Cluster: any one reachable node tells the rest.
    Cluster(Arc<Nodes>),
}

/// A connection to publish on.
#[derive(Clone)]
pub enum Publishing {
    /// One Redis (or the Sentinels' master), reconnecting by itself.
    Plain(ConnectionManager),
    /// A cluster's nodes, each message routed to its channel's shard.
    Cluster(ClusterConnection),
}

impl Broker {
    /// A client of the Redis to publish on and subscribe to now: the one Redis, or the master
    /// the Sentinels name (they are asked, and the master checked to be one, each time).
    pub async fn client(&self) -> RedisResult<redis::Client> {
        match self {
            Self::Single(client) => Ok(client.as_ref().clone()),
            Self::Sentinel(sentinel) => {
                let asked = async { sentinel.lock().await.async_get_client().await };
                tokio::time::timeout(REDIS_TIMEOUT, asked)
                    .await
                    .map_err(|_| timed_out())?
            }
            Self::Cluster(_) => Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a cluster has no single node",
            ))),
        }
    }

    /// The channel a room's messages travel on: sharded on a cluster.
    pub fn channel(&self, room_id: RoomId) -> String {
        match self {
            Self::Cluster(_) => sharded_channel(room_id),
            Self::Single(_) | Self::Sentinel(_) => channel(room_id),
        }
    }

    /// A connection to publish on.
    pub async fn publishing(&self) -> RedisResult<Publishing> {
        if let Self::Cluster(nodes) = self {
            let client = nodes.builder(REDIS_TIMEOUT).build()?;
            let connection = client.get_async_connection();
            return tokio::time::timeout(REDIS_TIMEOUT, connection)
                .await
                .map_err(|_| timed_out())?
                .map(Publishing::Cluster);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let client = self.client().await?;
        let connection = client.get_connection_manager_with_config(config).await?;
        Ok(Publishing::Plain(connection))
    }

    /// Whether the Redis behind it may change (a failover, slots that move): a connection
    /// that fails is then opened anew, through the Sentinels or the cluster's nodes, rather
    /// than to the same address.
    pub fn moves(&self) -> bool {
        matches!(self, Self::Sentinel(_) | Self::Cluster(_))
    }
}

impl Publishing {
    /// Publishes each message on its channel; how many did not go. One Redis takes them in
    /// one pipeline (all or none); a cluster each on its shard, all at once.
    pub async fn publish(&mut self, messages: Vec<(String, String)>) -> usize {
        match self {
            Self::Plain(connection) => {
                let count = messages.len();
                let mut pipe = redis::pipe();
                for (channel, payload) in messages {
                    pipe.publish(channel, payload).ignore();
                }
                match pipe.query_async::<()>(connection).await {
                    Ok(()) => 0,
                    Err(_) => count,
                }
            }
            Self::Cluster(connection) => {
                let sent = messages.into_iter().map(|(channel, payload)| {
                    let mut connection = connection.clone();
                    async move {
                        redis::cmd("SPUBLISH")
                            .arg(channel)
                            .arg(payload)
                            .query_async::<i64>(&mut connection)
                            .await
                    }
                });
                futures_util::future::join_all(sent)
                    .await
                    .iter()
                    .filter(|sent| sent.is_err())
                    .count()
            }
        }
    }

    /// Whether it answers; `master`: and still talks to a master (`ROLE`; a cluster's
    /// connection finds its masters itself).
    pub async fn answers(&mut self, master: bool) -> bool {
        match self {
            Self::Plain(connection) if master => redis::cmd("ROLE")
                .query_async::<Vec<redis::Value>>(connection)
                .await
                .is_ok_and(|role| is_master(&role)),
            Self::Plain(connection) => ping(connection).await,
            Self::Cluster(connection) => ping(connection).await,
        }
    }
}

async fn ping(connection: &mut impl redis::aio::ConnectionLike) -> bool {
    redis::cmd("PING")
        .query_async::<String>(connection)
        .await
        .is_ok()
}

/// Whether a `ROLE` answer is a master's.
fn is_master(role: &[redis::Value]) -> bool {
    matches!(role.first(), Some(redis::Value::BulkString(name)) if name == b"master")
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "the Sentinels did not answer in time"))
}
