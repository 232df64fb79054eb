//! Webhook settings: the key that seals their secrets, which addresses they may reach, and
//! how their delivery is timed.

use std::time::Duration;

use clap::Args;

use super::Secret;

/// Webhooks (identity mode): how their secrets are sealed and how delivery behaves.
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// Key that seals webhook secrets in storage, at least 32 bytes (default: derived from
    /// CHAT_JWT_SECRET; with a public key and no CHAT_WEBHOOK_KEY, webhooks cannot be created)
    #[arg(long, env = "CHAT_WEBHOOK_KEY", hide_env_values = true)]
    pub webhook_key: Option<Secret>,
    /// Allow webhook URLs that reach loopback or private addresses
    #[arg(long, env = "CHAT_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
    /// Milliseconds an instance holds a webhook's delivery before another may take it over
    #[arg(long, env = "CHAT_WEBHOOK_LEASE_MS", value_parser = clap::value_parser!(u64).range(1000..=600_000), default_value_t = 15_000)]
    pub webhook_lease_ms: u64,
    /// Milliseconds between looks for events a webhook has not been sent yet
    #[arg(long, env = "CHAT_WEBHOOK_POLL_MS", value_parser = clap::value_parser!(u64).range(10..=60_000), default_value_t = 500)]
    pub webhook_poll_ms: u64,
    /// Milliseconds a receiver has to answer a delivery
    #[arg(long, env = "CHAT_WEBHOOK_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(100..=60_000), default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
}

impl WebhookSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.webhook_lease_ms)
    }

    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.webhook_poll_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_timeout_ms)
    }
}
