//! When to ping the client, and when its silence means it is gone.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};

/// What a heartbeat tick calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    Ping,
    /// A check of the client's silence between pings, which found it alive.
    Alive,
    /// Nothing came from the client (no frame, no pong) for longer than the timeout.
    Silent,
}

/// Silence is checked at least this many times per timeout, so a connection is dropped at
/// most a fifth of the timeout late.
const CHECKS_PER_TIMEOUT: u32 = 5;

pub struct Heartbeat {
    ticks: Interval,
    ping_every: Duration,
    timeout: Duration,
    last_seen: Instant,
    last_ping: Instant,
}

fn ticks_every(period: Duration) -> Interval {
    let mut ticks = interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

impl Heartbeat {
    pub fn new(every: Duration, timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            ticks: ticks_every(every),
            ping_every: every,
            timeout,
            last_seen: now,
            last_ping: now,
        }
    }

    /// Expects something from the client at least this often (a STOMP client that promised
    /// heart-beats), if that is sooner than the timeout it had; pings stay as they were.
    pub fn expect_within(&mut self, timeout: Duration) {
        if timeout >= self.timeout {
            return;
        }
        self.timeout = timeout;
        let check = timeout / CHECKS_PER_TIMEOUT;
        if check < self.ticks.period() {
            self.ticks = ticks_every(check);
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
        } else if self.last_ping.elapsed() >= self.ping_every {
            self.last_ping = Instant::now();
            Beat::Ping
        } else {
            Beat::Alive
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

    #[tokio::test(start_paused = true)]
    async fn a_shorter_expectation_checks_silence_more_often_but_pings_as_before() {
        let started = Instant::now();
        let mut heartbeat = Heartbeat::new(EVERY, TIMEOUT);
        heartbeat.expect_within(Duration::from_secs(25));

        let mut beats = Vec::new();
        while beats.last() != Some(&Beat::Silent) {
            beats.push(heartbeat.tick().await);
        }

        // Checks every 5 s: a ping at 15 s, silence called at 30 s (25 s plus one check).
        assert_eq!(
            beats,
            [
                Beat::Alive,
                Beat::Alive,
                Beat::Ping,
                Beat::Alive,
                Beat::Alive,
                Beat::Silent
            ]
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_longer_expectation_changes_nothing() {
        let mut heartbeat = Heartbeat::new(EVERY, TIMEOUT);
        heartbeat.expect_within(Duration::from_secs(60));

        let beats = [
            heartbeat.tick().await,
            heartbeat.tick().await,
            heartbeat.tick().await,
        ];
        assert_eq!(beats, [Beat::Ping; 3]);
        assert_eq!(heartbeat.tick().await, Beat::Silent);
    }
}
