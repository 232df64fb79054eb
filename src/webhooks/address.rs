//! Where a webhook may send: unless `CHAT_WEBHOOK_ALLOW_PRIVATE=true`, only to public
//! addresses. A URL is judged when it is given, and every connection again, through the
//! resolver the client uses, so a name that later resolves to a private address (DNS
//! rebinding) is refused too.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::{WebhookUrl, is_public};

/// How long creating a webhook waits for its host's addresses.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[error(
    "url must not reach a loopback or private address (set CHAT_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
)]
pub struct PrivateAddress;

/// Whether the URL may be used: its literal address, or every address its host resolves to
/// now, must be public. A host that does not resolve now (or not within 2 s) is let through:
/// it may later, and each delivery checks again.
pub async fn check(url: &WebhookUrl, allow_private: bool) -> Result<(), PrivateAddress> {
    if allow_private {
        return Ok(());
    }
    if let Some(ip) = url.literal_ip() {
        return public(ip);
    }
    let (Some(host), Some(port)) = (url.url().host_str(), url.url().port_or_known_default()) else {
        return Ok(());
    };
    match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut addrs)) => addrs.try_for_each(|addr| public(addr.ip())),
        Ok(Err(_)) | Err(_) => Ok(()),
    }
}

/// The URL's literal address, if it has one, may be used.
pub fn check_literal(url: &WebhookUrl, allow_private: bool) -> Result<(), PrivateAddress> {
    match url.literal_ip() {
        Some(ip) if !allow_private => public(ip),
        _ => Ok(()),
    }
}

fn public(ip: IpAddr) -> Result<(), PrivateAddress> {
    is_public(ip).then_some(()).ok_or(PrivateAddress)
}

/// The system's resolver, with the addresses that may not be used taken out.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let usable: Vec<SocketAddr> = found
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if usable.is_empty() {
                return Err(Box::new(PrivateAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(usable.into_iter()) as Addrs)
        })
    }
}
