//! Webhook delivery: how each attempt ended, and how far behind each webhook is. The lag's
//! label is the webhook's id, which only an `admin` creates: series stay few, and each one
//! goes with its webhook.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Labels;

type WebhookLabel = [(&'static str, String); 1];

#[derive(Default)]
pub struct WebhookMetrics {
    deliveries: Family<Labels, Counter>,
    lag_events: Family<WebhookLabel, Gauge>,
    lag_seconds: Family<WebhookLabel, Gauge<f64, AtomicU64>>,
}

impl WebhookMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "chat_webhook_deliveries",
            "Webhook deliveries by result: delivered (a 2xx), status (another answer), timeout, unreachable, private_address",
            self.deliveries.clone(),
        );
        registry.register(
            "chat_webhook_lag_events",
            "Events of a webhook's rooms after its positions (types it does not take included), by webhook, on the instance delivering it",
            self.lag_events.clone(),
        );
        registry.register(
            "chat_webhook_lag_seconds",
            "Age of the oldest event a webhook is still trying to send, by webhook, on the instance delivering it (0: caught up)",
            self.lag_seconds.clone(),
        );
    }

    pub fn delivery(&self, result: &'static str) {
        self.deliveries.get_or_create(&[("result", result)]).inc();
    }

    pub fn lag(&self, webhook: String, events: i64, seconds: f64) {
        let label = [("webhook", webhook)];
        self.lag_events.get_or_create(&label).set(events);
        self.lag_seconds.get_or_create(&label).set(seconds);
    }

    /// Drops the webhook's lag: it is deleted, or delivered by another instance now.
    pub fn forget(&self, webhook: String) {
        let label = [("webhook", webhook)];
        self.lag_events.remove(&label);
        self.lag_seconds.remove(&label);
    }
}
