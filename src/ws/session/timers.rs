//! A session's clocks: its heart-beats (WebSocket pings, SockJS's `h`, STOMP's), when its
//! token expires, and by when a STOMP client must CONNECT.

use std::pin::Pin;
use std::time::{Duration, SystemTime};

use tokio::time::{Interval, MissedTickBehavior, Sleep};

use super::Dialect;
use super::heartbeat::Heartbeat;
use crate::config::Settings;
use crate::identity::Identity;
use crate::ws::transport::sockjs;
use crate::ws::transport::websocket::Transport;

/// Resolves when the token expires; never in open mode.
pub(super) async fn expired(expiry: &mut Option<Pin<Box<Sleep>>>) {
    match expiry {
        Some(expiry) => expiry.await,
        None => std::future::pending().await,
    }
}

/// A timer that fires when the identity's token expires.
pub(super) fn expiry_of(identity: &Identity) -> Pin<Box<Sleep>> {
    let left = identity
        .expires_at()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Box::pin(tokio::time::sleep(left))
}

/// Ticks of an optional timer; never without one.
pub(super) async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A timer that first fires one period from now.
pub(super) fn every(period: Duration) -> Interval {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// The session's clocks: its heart-beats (WebSocket pings, SockJS's `h`, STOMP's), when its
/// token expires, and by when a STOMP client must CONNECT.
pub(super) struct Timers {
    pub(super) heartbeat: Heartbeat,
    /// SockJS's `h`, on a SockJS connection.
    pub(super) sockjs_beat: Option<Interval>,
    /// STOMP's heart-beat, when the client asked for one.
    pub(super) stomp_beat: Option<Interval>,
    /// In identity mode, when its token expires.
    pub(super) expiry: Option<Pin<Box<Sleep>>>,
    /// On STOMP, until CONNECT: when the client must have sent it.
    pub(super) connect_by: Option<Pin<Box<Sleep>>>,
}

impl Timers {
    pub(super) fn new(settings: &Settings, transport: Transport, dialect: &Dialect) -> Self {
        Self {
            heartbeat: Heartbeat::new(settings.ping_interval(), settings.client_timeout()),
            sockjs_beat: (transport == Transport::SockJs).then(|| every(sockjs::HEARTBEAT)),
            stomp_beat: None,
            expiry: None,
            connect_by: matches!(dialect, Dialect::Stomp(_))
                .then(|| Box::pin(tokio::time::sleep(settings.client_timeout()))),
        }
    }
}
