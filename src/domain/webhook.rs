//! Webhooks: where events are sent, and which of them. The URL's address is judged here (a
//! pure rule); resolving its host is the delivery's job.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{DomainError, EventKind, RoomId};

/// The longest URL a webhook may have.
const MAX_URL: usize = 2048;
/// The most rooms one webhook may name (more: leave `rooms` out and take every room).
pub const MAX_WEBHOOK_ROOMS: usize = 1000;

/// A webhook's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct WebhookId(Uuid);

impl WebhookId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Uuid::try_parse(raw)
            .map(Self)
            .map_err(|_| DomainError::NotUuid { field: "webhookId" })
    }

    pub fn uuid(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// An `http` or `https` URL with a host, at most 2,048 characters, with no fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let refused = DomainError::OutOfRange {
            field: "url",
            range: "an http:// or https:// URL with a host and no fragment, at most 2048 characters",
        };
        if raw.len() > MAX_URL {
            return Err(refused);
        }
        let url = url::Url::parse(raw).map_err(|_| refused.clone())?;
        let fits = matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.fragment().is_none();
        fits.then_some(Self(url)).ok_or(refused)
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The address the URL names literally, if it names one rather than a host name.
    pub fn literal_ip(&self) -> Option<IpAddr> {
        match self.0.host()? {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        }
    }
}

/// Whether an address is one anybody on the internet could reach: not loopback, private,
/// link-local, shared (carrier NAT), unspecified, multicast, broadcast or documentation, in
/// IPv4 or IPv6 (an IPv4 address mapped into IPv6 is judged as IPv4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    let benchmarking = a == 198 && (b == 18 || b == 19);
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || shared
        || benchmarking
        || a == 0
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    let documentation = first == 0x2001 && ip.segments()[1] == 0x0db8;
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || unique_local
        || link_local
        || documentation)
}

/// Which events a webhook is sent: those of these rooms (None: every room) and of these types
/// (None: every type).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter {
    pub rooms: Option<Vec<RoomId>>,
    pub types: Option<Vec<EventKind>>,
}

impl EventFilter {
    /// Rooms as given (1 to 1,000 room ids, duplicates dropped) and types by name (at least
    /// one, each an event type).
    pub fn parse(rooms: Option<&[String]>, types: Option<&[String]>) -> Result<Self, DomainError> {
        Ok(Self {
            rooms: rooms.map(parse_rooms).transpose()?,
            types: types.map(parse_types).transpose()?,
        })
    }

    pub fn matches(&self, kind: EventKind) -> bool {
        self.types
            .as_ref()
            .is_none_or(|types| types.contains(&kind))
    }
}

fn parse_rooms(raw: &[String]) -> Result<Vec<RoomId>, DomainError> {
    if raw.is_empty() || raw.len() > MAX_WEBHOOK_ROOMS {
        return Err(DomainError::OutOfRange {
            field: "rooms",
            range: "1 to 1000 room ids (leave it out for every room)",
        });
    }
    let mut rooms = raw
        .iter()
        .map(|raw| RoomId::parse(raw))
        .collect::<Result<Vec<_>, _>>()?;
    rooms.sort_unstable();
    rooms.dedup();
    Ok(rooms)
}

fn parse_types(raw: &[String]) -> Result<Vec<EventKind>, DomainError> {
    let refused = DomainError::OutOfRange {
        field: "types",
        range: "at least one of ENTER, TALK, LEAVE, EDIT, DELETE, REACT, UNREACT, MODERATION",
    };
    if raw.is_empty() {
        return Err(refused);
    }
    let mut types = Vec::new();
    for name in raw {
        let kind = EventKind::parse(name).ok_or_else(|| refused.clone())?;
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_with_a_host_and_no_fragment_are_webhook_urls() {
        for good in ["https://example.com/hook", "http://10.0.0.1:8080/x?y=1"] {
            assert!(WebhookUrl::parse(good).is_ok(), "{good}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        for bad in [
            "",
            "example.com",
            "ftp://example.com/",
            "file:///etc/passwd",
            "https://example.com/#frag",
            "javascript:alert(1)",
            long.as_str(),
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_private_and_reserved_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_filter_takes_1_to_1000_rooms_and_known_types() {
        let room = RoomId::random().to_string();
        let filter = EventFilter::parse(
            Some(&[room.clone(), room.clone()]),
            Some(&["TALK".into(), "TALK".into()]),
        )
        .unwrap();
        assert_eq!(filter.rooms.map(|rooms| rooms.len()), Some(1));
        assert_eq!(filter.types, Some(vec![EventKind::Talk]));
        assert!(EventFilter::parse(Some(&[]), None).is_err());
        assert!(EventFilter::parse(Some(&vec![room; MAX_WEBHOOK_ROOMS + 1]), None).is_err());
        assert!(EventFilter::parse(Some(&["nope".into()]), None).is_err());
        assert!(EventFilter::parse(None, Some(&[])).is_err());
        assert!(EventFilter::parse(None, Some(&["talk".into()])).is_err());
        assert!(EventFilter::default().matches(EventKind::Leave));
    }
}
