//! How the settings must fit together, beyond what each one's own parser checks: refused at
//! start-up, naming the knobs to turn.

use std::time::Duration;

use super::Settings;

/// The longest the members of a dead instance may stay in their rooms (PROTOCOL.md).
const MAX_LEAVE_DELAY: Duration = Duration::from_secs(60);

/// The longest retention, in seconds (a century), as for a room's own.
const MAX_RETENTION_AGE: u64 = 3_155_760_000;

/// A combination of settings that cannot work, naming the knobs to turn.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "CHAT_CLIENT_TIMEOUT_MS ({timeout}) must be greater than CHAT_PING_INTERVAL_MS ({interval}), \
         or every client is dropped before it can answer a ping"
    )]
    TimeoutBelowPing { timeout: u64, interval: u64 },
    #[error(
        "CHAT_INSTANCE_TIMEOUT_MS ({timeout}) must be at least twice CHAT_HEARTBEAT_MS ({heartbeat}), \
         or a live instance that misses one heartbeat is taken for dead"
    )]
    TimeoutBelowHeartbeat { timeout: u64, heartbeat: u64 },
    #[error(
        "CHAT_INSTANCE_TIMEOUT_MS ({timeout}) plus CHAT_HEARTBEAT_MS ({heartbeat}) must be at most \
         60000: the members of an instance that died must leave within a minute"
    )]
    LivenessOverAMinute { timeout: u64, heartbeat: u64 },
    #[error("CHAT_RETENTION_MAX_AGE ({0}) must be 1 to 3155760000 seconds (a century)")]
    RetentionOutOfRange(u64),
    #[error(
        "CHAT_RETENTION_CHECK_MS ({0}) must be at most 50000: events past their retention \
         are erased within a minute"
    )]
    RetentionCheckOverAMinute(u64),
}

impl Settings {
    /// Checks what each setting's own parser cannot: how they fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.client_timeout_ms <= self.ping_interval_ms {
            return Err(ConfigError::TimeoutBelowPing {
                timeout: self.client_timeout_ms,
                interval: self.ping_interval_ms,
            });
        }
        let (timeout, heartbeat) = (self.instance_timeout_ms, self.heartbeat_ms);
        if timeout < heartbeat.saturating_mul(2) {
            return Err(ConfigError::TimeoutBelowHeartbeat { timeout, heartbeat });
        }
        if self.leave_bound() > MAX_LEAVE_DELAY {
            return Err(ConfigError::LivenessOverAMinute { timeout, heartbeat });
        }
        self.validate_retention()
    }

    fn validate_retention(&self) -> Result<(), ConfigError> {
        if let Some(age) = self.retention_max_age
            && !(1..=MAX_RETENTION_AGE).contains(&age)
        {
            return Err(ConfigError::RetentionOutOfRange(age));
        }
        if self.retention_check_ms > 50_000 {
            return Err(ConfigError::RetentionCheckOverAMinute(
                self.retention_check_ms,
            ));
        }
        Ok(())
    }
}
