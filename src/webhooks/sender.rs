//! One delivery: the Event's JSON posted to the webhook's URL with the Standard Webhooks
//! headers, within the timeout, following no redirect; anything but a `2xx` is a failure.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use reqwest::redirect::Policy;

use super::address::{self, GuardedResolver};
use super::secret::SigningKey;
use crate::domain::{Event, Timestamp, WebhookUrl};

/// Why a delivery failed, as `lastError` shows it: nothing of this server's internals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("HTTP {0}")]
    Status(u16),
    #[error("no answer within {0} ms")]
    TimedOut(u128),
    #[error("could not connect")]
    Unreachable,
    #[error("the url reaches a loopback or private address")]
    PrivateAddress,
    #[error("the request failed before an answer")]
    Broken,
}

impl Failure {
    /// The `result` label of `chat_webhook_deliveries`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Status(_) => "status",
            Self::TimedOut(_) => "timeout",
            Self::Unreachable | Self::Broken => "unreachable",
            Self::PrivateAddress => "private_address",
        }
    }
}

/// Posts deliveries; one client (and its connection pool) for every webhook.
pub struct Sender {
    client: reqwest::Client,
    timeout: Duration,
    allow_private: bool,
}

impl Sender {
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, reqwest::Error> {
        install_tls_provider();
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(timeout)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .build()?;
        Ok(Self {
            client,
            timeout,
            allow_private,
        })
    }

    /// Sends `event` (as `body`, its JSON) signed with `key`.
    pub async fn send(
        &self,
        url: &WebhookUrl,
        key: &SigningKey,
        event: &Event,
        body: String,
    ) -> Result<(), Failure> {
        address::check_literal(url, self.allow_private).map_err(|_| Failure::PrivateAddress)?;
        let id = event.message_id.to_string();
        let timestamp = Timestamp::now().millis().div_euclid(1000);
        let signature = key.sign(&id, timestamp, &body);
        let sent = self
            .client
            .post(url.url().clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, HeaderValue::from_static("chat-webhooks"))
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) => Err(Failure::Status(answer.status().as_u16())),
            Err(error) => Err(self.why(&error)),
        }
    }

    fn why(&self, error: &reqwest::Error) -> Failure {
        if error.is_timeout() {
            return Failure::TimedOut(self.timeout.as_millis());
        }
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            if cause.is::<address::PrivateAddress>() {
                return Failure::PrivateAddress;
            }
            source = cause.source();
        }
        match error.is_connect() {
            true => Failure::Unreachable,
            false => Failure::Broken,
        }
    }
}

/// Gives the process's TLS ring as its crypto provider (once; later calls find it there):
/// reqwest is built without a provider of its own, so every client in the process (the tests'
/// and the benchmarks' too) needs this before it is built. rustls 0.23.48 deprecates ring's for
/// lacking post-quantum key exchange; the other provider (aws-lc-rs) would add a C and CMake
/// build to every build, and sqlx and redis reach their servers over ring already.
pub fn install_tls_provider() {
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let _ = provider.install_default();
}
