//! A client's address behind reverse proxies. Behind a proxy every connection comes from the
//! proxy, so per-address limits would throttle everyone together; the client's own address is
//! in the proxy's forwarding header. Anyone can send that header, so it is read only when the
//! peer is a configured trusted proxy, and from its right end: the entries a trusted proxy
//! appended, never what the client wrote before them.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::{FORWARDED, HeaderMap, HeaderName};

use crate::config::{ForwardedHeader, TrustedProxies};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

#[derive(Debug, Clone)]
pub struct ClientAddress {
    proxies: TrustedProxies,
    header: ForwardedHeader,
}

impl ClientAddress {
    pub fn new(proxies: TrustedProxies, header: ForwardedHeader) -> Self {
        Self { proxies, header }
    }

    /// The peer's address, or, when the peer is a trusted proxy, the nearest address in its
    /// forwarding header that is not itself a trusted proxy. An entry that cannot be read
    /// ends the walk at the last proxy before it.
    pub fn of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        if !self.trusted(peer) {
            return client;
        }
        for hop in self.hops(headers).into_iter().rev() {
            let Some(address) = hop else { break };
            client = address;
            if !self.trusted(address) {
                break;
            }
        }
        client
    }

    fn trusted(&self, address: IpAddr) -> bool {
        self.proxies.contain(address)
    }

    /// Every address the header lists, first hop first, across repeated header lines.
    fn hops(&self, headers: &HeaderMap) -> Vec<Option<IpAddr>> {
        let (name, read): (_, fn(&str) -> Option<IpAddr>) = match self.header {
            ForwardedHeader::XForwardedFor => (X_FORWARDED_FOR, address),
            ForwardedHeader::Forwarded => (FORWARDED, forwarded_for),
        };
        headers
            .get_all(name)
            .flat_map(|value| value.to_str().unwrap_or_default().split(','))
            .map(read)
            .collect()
    }
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, or either with a port.
fn address(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

/// The `for=` of one RFC 7239 element: `for=192.0.2.60;proto=http` or
/// `for="[2001:db8::17]:4711"`. `unknown` and obfuscated names are unreadable.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then_some(value.trim())
    })?;
    let value = value.trim_matches('"');
    match value.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next()?.parse().ok(),
        None => address(value),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    fn headers(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn behind(proxies: &str, header: ForwardedHeader) -> ClientAddress {
        ClientAddress::new(proxies.parse().unwrap(), header)
    }

    #[test]
    fn with_no_trusted_proxy_the_header_is_ignored() {
        let client = behind("", ForwardedHeader::XForwardedFor);
        let forged = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(client.of(ip("198.51.100.1"), &forged), ip("198.51.100.1"));
    }

    #[test]
    fn a_peer_that_is_not_a_trusted_proxy_cannot_forge_its_address() {
        let client = behind("10.0.0.0/8", ForwardedHeader::XForwardedFor);
        let forged = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(client.of(ip("198.51.100.1"), &forged), ip("198.51.100.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let client = behind("10.0.0.0/8, 192.168.1.1", ForwardedHeader::XForwardedFor);
        let chain = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.9", "192.168.1.1"]);
        assert_eq!(
            client.of(ip("10.0.0.2"), &chain),
            ip("203.0.113.9"),
            "1.1.1.1 was written by the client"
        );
    }

    #[test]
    fn an_unreadable_hop_ends_the_walk_at_the_proxy_before_it() {
        let client = behind("10.0.0.2", ForwardedHeader::XForwardedFor);
        let garbled = headers("x-forwarded-for", &["203.0.113.9, nonsense"]);
        assert_eq!(client.of(ip("10.0.0.2"), &garbled), ip("10.0.0.2"));
        assert_eq!(client.of(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
    }

    #[test]
    fn addresses_with_ports_are_read() {
        let client = behind("::1", ForwardedHeader::XForwardedFor);
        let ported = headers("x-forwarded-for", &["[2001:db8::1]:443"]);
        assert_eq!(client.of(ip("::1"), &ported), ip("2001:db8::1"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let client = behind("10.0.0.2", ForwardedHeader::Forwarded);
        let mut both = headers("x-forwarded-for", &["198.51.100.7"]);
        both.append(
            FORWARDED,
            HeaderValue::from_static(r#"for=203.0.113.9;proto=https, for="[2001:db8::17]:4711""#),
        );
        assert_eq!(client.of(ip("10.0.0.2"), &both), ip("2001:db8::17"));
        let unknown = headers("forwarded", &["for=unknown"]);
        assert_eq!(client.of(ip("10.0.0.2"), &unknown), ip("10.0.0.2"));
    }
}
