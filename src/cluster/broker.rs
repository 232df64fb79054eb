//! Where the broker is: one Redis (`redis://`, `rediss://`); the master a set of Sentinels
//! names (`redis+sentinel://host:port,host:port/<master name>`, `rediss+sentinel://` for TLS to
//! the master), asked again at every connect so that a failover is followed without a restart;
//! or a Redis Cluster (`redis+cluster://host:port,host:port`, `rediss+cluster://`), where each
//! room's channel is a sharded one (`SPUBLISH`, `SSUBSCRIBE`) on the shard its partition's
//! hash tag names.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{ProtocolVersion, RedisConnectionInfo, RedisResult, TlsMode};
use tokio::sync::Mutex;

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

/// A `redis+cluster://` URL's nodes and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nodes {
    pub nodes: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: bool,
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
            let client = nodes.builder().build()?;
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

impl Nodes {
    /// `redis+cluster://[user:password@]host:port[,host:port...][/]`; None when the URL is
    /// not one of these.
    pub fn parse(url: &str) -> Option<Result<Self, &'static str>> {
        let (rest, tls) = match url.split_once("://")? {
            ("redis+cluster", rest) => (rest, false),
            ("rediss+cluster", rest) => (rest, true),
            _ => return None,
        };
        Some(Self::parse_rest(rest.trim_end_matches('/'), tls))
    }

    fn parse_rest(rest: &str, tls: bool) -> Result<Self, &'static str> {
        let (username, password, hosts) = credentials(rest)?;
        let nodes: Vec<String> = hosts.split(',').map(str::to_owned).collect();
        if nodes
            .iter()
            .any(|host| host.is_empty() || !host.contains(':') || host.contains('/'))
        {
            return Err("a redis+cluster:// URL lists nodes as host:port,host:port");
        }
        Ok(Self {
            nodes,
            username,
            password,
            tls,
        })
    }

    /// A cluster client's builder for these nodes: RESP3, which sharded subscriptions need.
    pub fn builder(&self) -> ClusterClientBuilder {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let nodes = self.nodes.iter().map(|host| format!("{scheme}://{host}/"));
        let mut builder = ClusterClientBuilder::new(nodes)
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(REDIS_TIMEOUT)
            .response_timeout(REDIS_TIMEOUT);
        if let Some(username) = &self.username {
            builder = builder.username(username);
        }
        if let Some(password) = &self.password {
            builder = builder.password(password);
        }
        builder
    }
}

/// The `user:password@` in front of a URL's hosts, and the hosts.
fn credentials(rest: &str) -> Result<(Option<String>, Option<String>, &str), &'static str> {
    let Some((credentials, hosts)) = rest.rsplit_once('@') else {
        return Ok((None, None, rest));
    };
    let (user, password) = credentials
        .split_once(':')
        .ok_or("credentials in a Redis URL are user:password")?;
    let user = Some(user.to_owned()).filter(|user| !user.is_empty());
    Ok((user, Some(password.to_owned()), hosts))
}

/// What a `redis+sentinel://` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    pub sentinels: Vec<String>,
    pub master: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: bool,
}

impl SentinelUrl {
    /// `redis+sentinel://[user:password@]host:port[,host:port...]/<master name>`, the
    /// credentials being the master's; None when the URL is not one of these.
    pub fn parse(url: &str) -> Option<Result<Self, &'static str>> {
        let (rest, tls) = match url.split_once("://")? {
            ("redis+sentinel", rest) => (rest, false),
            ("rediss+sentinel", rest) => (rest, true),
            _ => return None,
        };
        Some(Self::parse_rest(rest, tls))
    }

    fn parse_rest(rest: &str, tls: bool) -> Result<Self, &'static str> {
        let (hosts, master) = rest
            .split_once('/')
            .ok_or("a redis+sentinel:// URL ends with /<master name>")?;
        let master = master.trim_end_matches('/');
        if master.is_empty() || master.contains('/') {
            return Err("a redis+sentinel:// URL ends with /<master name>");
        }
        let (username, password, hosts) = credentials(hosts)?;
        let sentinels: Vec<String> = hosts.split(',').map(str::to_owned).collect();
        if sentinels
            .iter()
            .any(|host| host.is_empty() || !host.contains(':'))
        {
            return Err("a redis+sentinel:// URL lists its Sentinels as host:port,host:port");
        }
        Ok(Self {
            sentinels,
            master: master.to_owned(),
            username,
            password,
            tls,
        })
    }

    /// A client of these Sentinels for the master; nothing is connected yet.
    pub fn client(&self) -> RedisResult<Broker> {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|host| format!("redis://{host}/"))
            .collect();
        let mut redis = RedisConnectionInfo::default();
        if let Some(username) = &self.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        let mut node = SentinelNodeConnectionInfo::default().set_redis_connection_info(redis);
        if self.tls {
            node = node.set_tls_mode(TlsMode::Secure);
        }
        let client = SentinelClient::build(
            sentinels,
            &self.master,
            Some(node),
            SentinelServerType::Master,
        )?;
        Ok(Broker::Sentinel(Arc::new(Mutex::new(client))))
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "the Sentinels did not answer in time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_url_names_its_sentinels_its_master_and_the_masters_credentials() {
        let url = SentinelUrl::parse("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26379/main")
            .unwrap()
            .unwrap();
        assert_eq!(url.sentinels, ["10.0.0.1:26379", "10.0.0.2:26379"]);
        assert_eq!(url.master, "main");
        assert_eq!((url.username, url.password), (None, Some("s3cret".into())));
        assert!(!url.tls);
        let tls = SentinelUrl::parse("rediss+sentinel://app:pw@h:1/m/")
            .unwrap()
            .unwrap();
        assert!(tls.tls && tls.username.as_deref() == Some("app"));
        assert!(SentinelUrl::parse("redis://h:6379/").is_none());
        for bad in [
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h:1,/m",
            "redis+sentinel://h/m",
            "redis+sentinel://secret@h:1/m",
            "redis+sentinel://h:1/m/x",
        ] {
            assert!(matches!(SentinelUrl::parse(bad), Some(Err(_))), "{bad}");
        }
    }
}
