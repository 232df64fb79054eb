//! The frame rate limit, which counts every frame a client sends (text, binary and control
//! frames alike). In identity mode it counts per identity, across all of that identity's
//! sessions, so opening more connections buys no more frames. In open mode it counts per
//! session: many people may share one address behind a NAT, and the per-address connection
//! cap bounds what one address holds.

use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Settings;
use crate::identity::Identity;

/// The frame quotas of every identity, shared by their sessions.
pub type IdentityLimiter = DefaultKeyedRateLimiter<Arc<str>>;

/// The shared per-identity limiter the settings call for; None when rate limits are off.
pub fn identity_limiter(settings: &Settings) -> Option<Arc<IdentityLimiter>> {
    let (rate, burst) = settings.ws_quota()?;
    Some(Arc::new(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    )))
}

/// One session's frame limit.
pub enum FrameLimit {
    Off,
    Session(DefaultDirectRateLimiter),
    Identity {
        limiter: Arc<IdentityLimiter>,
        subject: Arc<str>,
    },
}

impl FrameLimit {
    pub fn new(
        settings: &Settings,
        shared: Option<&Arc<IdentityLimiter>>,
        identity: Option<&Identity>,
    ) -> Self {
        let Some((rate, burst)) = settings.ws_quota() else {
            return Self::Off;
        };
        match (shared, identity) {
            (Some(limiter), Some(identity)) => Self::Identity {
                limiter: limiter.clone(),
                subject: identity.subject().into(),
            },
            _ => Self::Session(RateLimiter::direct(
                Quota::per_second(rate).allow_burst(burst),
            )),
        }
    }

    /// Counts one frame: false when it is over the limit.
    pub fn admits(&self) -> bool {
        match self {
            Self::Off => true,
            Self::Session(limiter) => limiter.check().is_ok(),
            Self::Identity { limiter, subject } => limiter.check_key(subject).is_ok(),
        }
    }
}
