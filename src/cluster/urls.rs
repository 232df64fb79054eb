//! What a `REDIS_URL` for several Redis nodes names: Sentinels and their master's name
//! (`redis+sentinel://`), or a cluster's nodes (`redis+cluster://`), with the credentials of
//! the nodes that carry the messages.

use std::time::Duration;

use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, ProtocolVersion, RedisResult, TlsMode};

/// How to reach the nodes that carry the messages: their credentials, and TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: bool,
    /// The authority (PEM) to verify the nodes against instead of the system's roots.
    pub roots: Option<Vec<u8>>,
}

/// A `redis+cluster://` URL's nodes and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nodes {
    pub nodes: Vec<String>,
    pub access: Access,
}

impl Nodes {
    /// `redis+cluster://[user:password@]host:port[,host:port...][/]`; None when the URL is
    /// not one of these.
    pub fn parse(url: &str) -> Option<Result<Self, &'static str>> {
        let (rest, tls) = scheme(url, "cluster")?;
        Some(Self::parse_rest(rest.trim_end_matches('/'), tls))
    }

    fn parse_rest(rest: &str, tls: bool) -> Result<Self, &'static str> {
        let (access, hosts) = access(rest, tls)?;
        let nodes: Vec<String> = hosts.split(',').map(str::to_owned).collect();
        if nodes.iter().any(|host| host_and_port(host).is_none()) {
            return Err("a redis+cluster:// URL lists nodes as host:port,host:port");
        }
        Ok(Self { nodes, access })
    }

    /// A cluster client's builder for these nodes: RESP3, which sharded subscriptions need,
    /// and `timeout` to connect and for each answer.
    pub fn builder(&self, timeout: Duration) -> ClusterClientBuilder {
        let access = &self.access;
        let scheme = if access.tls { "rediss" } else { "redis" };
        let nodes = self.nodes.iter().map(|host| format!("{scheme}://{host}/"));
        let mut builder = ClusterClientBuilder::new(nodes)
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(timeout)
            .response_timeout(timeout);
        if let Some(username) = &access.username {
            builder = builder.username(username);
        }
        if let Some(password) = &access.password {
            builder = builder.password(password);
        }
        if let Some(roots) = &access.roots {
            builder = builder.certs(super::certificates(roots.clone()));
        }
        builder
    }
}

/// What follows `redis+<kind>://` (`false`) or `rediss+<kind>://` (`true`: TLS); None for
/// any other scheme.
fn scheme<'a>(url: &'a str, kind: &str) -> Option<(&'a str, bool)> {
    let (scheme, rest) = url.split_once("://")?;
    let (plain, tls) = scheme.split_once('+')?;
    if tls != kind {
        return None;
    }
    match plain {
        "redis" => Some((rest, false)),
        "rediss" => Some((rest, true)),
        _ => None,
    }
}

/// `host:port`, split; None unless both are there and the port is a number.
fn host_and_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty() && !host.contains('/')).then(|| (host.to_owned(), port))
}

/// The `user:password@` in front of a URL's hosts, as the nodes' access with `tls`, and the
/// hosts.
fn access(rest: &str, tls: bool) -> Result<(Access, &str), &'static str> {
    let Some((credentials, hosts)) = rest.rsplit_once('@') else {
        let access = Access {
            tls,
            ..Access::default()
        };
        return Ok((access, rest));
    };
    let (user, password) = credentials
        .split_once(':')
        .ok_or("credentials in a Redis URL are user:password")?;
    let access = Access {
        username: Some(user.to_owned()).filter(|user| !user.is_empty()),
        password: Some(password.to_owned()),
        tls,
        roots: None,
    };
    Ok((access, hosts))
}

/// What a `redis+sentinel://` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// Each Sentinel's host and port.
    pub sentinels: Vec<(String, u16)>,
    pub master: String,
    /// How to reach the master (the Sentinels themselves are asked in plain).
    pub access: Access,
}

impl SentinelUrl {
    /// `redis+sentinel://[user:password@]host:port[,host:port...]/<master name>`, the
    /// credentials being the master's; None when the URL is not one of these.
    pub fn parse(url: &str) -> Option<Result<Self, &'static str>> {
        let (rest, tls) = scheme(url, "sentinel")?;
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
        let (access, hosts) = access(hosts, tls)?;
        let sentinels = hosts
            .split(',')
            .map(host_and_port)
            .collect::<Option<Vec<_>>>()
            .ok_or("a redis+sentinel:// URL lists its Sentinels as host:port,host:port")?;
        Ok(Self {
            sentinels,
            master: master.to_owned(),
            access,
        })
    }

    /// A client of these Sentinels for the master; nothing is connected yet.
    pub fn client(&self) -> RedisResult<SentinelClient> {
        let sentinels = self
            .sentinels
            .iter()
            .map(|(host, port)| ConnectionAddr::Tcp(host.clone(), *port));
        let mut builder =
            SentinelClientBuilder::new(sentinels, &self.master, SentinelServerType::Master)?;
        let access = &self.access;
        if let Some(username) = &access.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &access.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if access.tls {
            builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
        }
        if let Some(roots) = &access.roots {
            builder = builder.set_client_to_redis_certificates(super::certificates(roots.clone()));
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_url_names_its_sentinels_its_master_and_the_masters_credentials() {
        let url = SentinelUrl::parse("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26379/main")
            .unwrap()
            .unwrap();
        assert_eq!(
            url.sentinels,
            [("10.0.0.1".into(), 26379), ("10.0.0.2".into(), 26379)]
        );
        assert_eq!(url.master, "main");
        assert_eq!(
            (url.access.username, url.access.password),
            (None, Some("s3cret".into()))
        );
        assert!(!url.access.tls);
        let tls = SentinelUrl::parse("rediss+sentinel://app:pw@h:1/m/")
            .unwrap()
            .unwrap();
        assert!(tls.access.tls && tls.access.username.as_deref() == Some("app"));
        assert!(SentinelUrl::parse("redis://h:6379/").is_none());
        for bad in [
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h:1,/m",
            "redis+sentinel://h/m",
            "redis+sentinel://secret@h:1/m",
            "redis+sentinel://h:1/m/x",
            "redis+sentinel://h:port/m",
            "redis+sentinel://h:70000/m",
            "redis+sentinel://:1/m",
        ] {
            assert!(matches!(SentinelUrl::parse(bad), Some(Err(_))), "{bad}");
        }
    }

    #[test]
    fn a_cluster_url_names_its_nodes_and_their_credentials() {
        let url = Nodes::parse("redis+cluster://app:pw@10.0.0.1:7000,10.0.0.2:7001/")
            .unwrap()
            .unwrap();
        assert_eq!(url.nodes, ["10.0.0.1:7000", "10.0.0.2:7001"]);
        assert_eq!(
            (
                url.access.username.as_deref(),
                url.access.password.as_deref()
            ),
            (Some("app"), Some("pw"))
        );
        assert!(
            Nodes::parse("rediss+cluster://h:1")
                .unwrap()
                .unwrap()
                .access
                .tls
        );
        assert!(Nodes::parse("redis+sentinel://h:1/m").is_none());
        for bad in [
            "redis+cluster://",
            "redis+cluster://h",
            "redis+cluster://h:1,",
            "redis+cluster://h:1/x",
            "redis+cluster://h:port",
            "redis+cluster://:7000",
        ] {
            assert!(matches!(Nodes::parse(bad), Some(Err(_))), "{bad}");
        }
    }
}
