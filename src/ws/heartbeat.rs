//! When to ping the client, and when its silence means it is gone.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};

/// What a heartbeat tick calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    Ping,
    /// Nothing came from the client (no frame, no pong) for longer than the timeout.
    Silent,
}

pub struct Heartbeat {
    ticks: Interval,
    timeout: Duration,
    last_seen: Instant,
}

impl Heartbeat {
    pub fn new(every: Duration, timeout: Duration) -> Self {
        let now = Instant::now();
        let mut ticks = interval_at(now + every, every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            ticks,
            timeout,
            last_seen: now,
        }
    }

    /// Something came from the client.
    pub fn seen(&mut self) {
        self.last_seen = Instant::now();
    }

    pub async fn tick(&mut self) -> Beat {
        self.ticks.tick().await;
        if self.last_seen.elapsed() > self.timeout {
            Beat::Silent
        } else {
            Beat::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_secs(15);
    const TIMEOUT: Duration = Duration::from_secs(45);

    #[tokio::test(start_paused = true)]
    async fn it_pings_every_interval_and_calls_silence_past_the_timeout() {
        let started = Instant::now();
        let mut heartbeat = Heartbeat::new(EVERY, TIMEOUT);

        for beat in 1..=3 {
            assert_eq!(heartbeat.tick().await, Beat::Ping);
            assert_eq!(started.elapsed(), EVERY * beat);
        }
        assert_eq!(heartbeat.tick().await, Beat::Silent);
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn anything_from_the_client_restarts_the_silence() {
        let started = Instant::now();
        let mut heartbeat = Heartbeat::new(EVERY, TIMEOUT);
        heartbeat.tick().await;
        heartbeat.tick().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        heartbeat.seen();

        let mut beats = Vec::new();
        while beats.last() != Some(&Beat::Silent) {
            beats.push(heartbeat.tick().await);
        }

        // Seen at 40 s: pings at 45, 60 and 75 s (35 s of silence), silence at 90 s (50 s).
        assert_eq!(beats, [Beat::Ping, Beat::Ping, Beat::Ping, Beat::Silent]);
        assert_eq!(started.elapsed(), Duration::from_secs(90));
    }
}
