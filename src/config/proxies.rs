//! Which reverse proxies to believe about a client's address, and the header they set.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The header the trusted proxies set. Only that one is read: a proxy passes the other through
/// untouched, so the client could write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx, HAProxy, most load balancers)
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`
    Forwarded,
}

/// A trusted proxy: one address (`10.0.0.7`, `::1`) or a range (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProxyRange(IpNet);

impl FromStr for ProxyRange {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        raw.parse::<IpNet>()
            .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
            .map(Self)
            .map_err(|_| format!("{raw:?} is neither an IP address nor a CIDR range"))
    }
}

/// The trusted proxies, written as a comma-separated list; empty items are ignored, so an
/// empty setting means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ProxyRange>);

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        raw.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contain(&self, address: IpAddr) -> bool {
        self.0.iter().any(|range| range.0.contains(&address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_is_an_address_or_a_range_and_an_empty_list_is_none() {
        assert!("10.0.0.7".parse::<ProxyRange>().is_ok());
        assert!("fd00::/8".parse::<ProxyRange>().is_ok());
        assert!("proxy.local".parse::<ProxyRange>().is_err());
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        assert!(" , ".parse::<TrustedProxies>().unwrap().is_empty());
        assert!("10.0.0.7,proxy.local".parse::<TrustedProxies>().is_err());
        let two: TrustedProxies = "10.0.0.0/8, ::1".parse().unwrap();
        assert!(two.contain("10.1.2.3".parse().unwrap()) && two.contain("::1".parse().unwrap()));
        assert!(!two.contain("192.0.2.1".parse().unwrap()));
    }
}
