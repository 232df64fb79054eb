//! Where the broker is: one Redis (`redis://`, `rediss://`), or the master a set of Sentinels
//! names (`redis+sentinel://host:port,host:port/<master name>`, `rediss+sentinel://` for TLS to
//! the master), asked again at every connect so that a failover is followed without a restart.

use std::sync::Arc;
use std::time::Duration;

use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{RedisConnectionInfo, RedisResult, TlsMode};
use tokio::sync::Mutex;

/// How long connecting, or one round trip, may take before Redis counts as unreachable.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub enum Broker {
    /// Boxed: a client is large, and a broker is cloned into each of its tasks.
    Single(Box<redis::Client>),
    /// A client of the Sentinels, which says who the master is now.
    Sentinel(Arc<Mutex<SentinelClient>>),
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
        }
    }

    /// Whether the Redis behind it may change (a failover): a connection that fails is then
    /// opened again through [`Broker::client`], not to the same address.
    pub fn moves(&self) -> bool {
        matches!(self, Self::Sentinel(_))
    }
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
        let (credentials, hosts) = match hosts.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials), hosts),
            None => (None, hosts),
        };
        let (username, password) = match credentials.map(|c| c.split_once(':')) {
            None => (None, None),
            Some(Some((user, password))) => (
                Some(user.to_owned()).filter(|user| !user.is_empty()),
                Some(password.to_owned()),
            ),
            Some(None) => return Err("credentials in a redis+sentinel:// URL are user:password"),
        };
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
