//! The subscription's own check, end to end: every [`BEAT_EVERY`] the subscriber publishes a
//! numbered beat on channels only it listens to, and expects to hear each one back on its
//! subscription. A `PING` proves only that a connection answers; a beat proves that what is
//! published reaches this instance, so a subscription that still answers but no longer brings
//! messages (a wedged proxy, a subscription the server lost) is caught too, in an idle room.
//! On a cluster there is a beat channel per partition, so every shard's connection is checked.

use std::collections::HashMap;
use std::time::Duration;

use super::wire::PARTITIONS;
use crate::domain::InstanceId;

/// How often a beat is published.
const BEAT_EVERY: Duration = Duration::from_secs(2);
/// How many rounds a beat may be late before the subscription counts as wedged: a busy
/// subscription may hold a beat behind room messages for a while, but not for this long.
const ROUNDS_LATE: u64 = 2;

/// The ticks to check on and send beats at, every [`BEAT_EVERY`] after the loop that takes them
/// was last free: a loop held up (resubscribing a slot that moved, on a starved machine) must
/// not then take several ticks in a row and judge beats that had no time to come back.
pub(super) fn checks() -> tokio::time::Interval {
    let mut checks = tokio::time::interval(BEAT_EVERY);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    checks
}

/// The beats sent, and the newest heard back on each channel.
pub(super) struct Beats {
    channels: Vec<String>,
    /// What every beat channel, and no room's, ends with: `:beat:<instance>`.
    suffix: String,
    index: HashMap<String, usize>,
    sent: u64,
    heard: Vec<u64>,
    /// Per channel subscribed again after its slot moved and not heard since: the round from
    /// which a beat proves the new subscription. The reply to `SSUBSCRIBE` does not prove it:
    /// while a slot moves, its old node's unasked `sunsubscribe` pushes can be taken for that
    /// reply (the redis crate, 1.8.2), and the `MOVED` that really answered it is lost.
    unconfirmed: Vec<Option<u64>>,
}

/// Why a beat channel is subscribed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejoin {
    /// Its slot moved to another shard.
    Moved,
    /// A round went by since it was subscribed again, and no beat came on it.
    Unheard,
}

/// What the beats say of the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Every beat sent has been heard on every channel.
    Heard,
    /// Some are on their way, within the bound.
    Pending,
    /// A channel has not brought a beat for longer than the bound.
    Wedged,
}

impl Beats {
    /// One channel on one Redis: `chat:beat:<instance>`.
    pub fn single(instance: InstanceId) -> Self {
        Self::on(instance, vec![format!("chat:beat:{instance}")])
    }

    /// One sharded channel per partition on a cluster: `chat:{p<n>}:beat:<instance>`.
    pub fn sharded(instance: InstanceId) -> Self {
        Self::on(
            instance,
            (0..PARTITIONS)
                .map(|partition| format!("chat:{{p{partition}}}:beat:{instance}"))
                .collect(),
        )
    }

    fn on(instance: InstanceId, channels: Vec<String>) -> Self {
        let index = channels
            .iter()
            .enumerate()
            .map(|(at, channel)| (channel.clone(), at))
            .collect();
        let heard = vec![0; channels.len()];
        let unconfirmed = vec![None; channels.len()];
        Self {
            channels,
            suffix: format!(":beat:{instance}"),
            index,
            sent: 0,
            heard,
            unconfirmed,
        }
    }

    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    /// Whether a message came on one of this instance's beat channels: asked of every message
    /// the subscription brings, so a compare of the name's end, not a lookup.
    pub fn is_beat_channel(&self, channel: &[u8]) -> bool {
        channel.ends_with(self.suffix.as_bytes())
    }

    /// Where one of this instance's beat channels is in [`Self::channels`] (on a cluster, its
    /// partition).
    pub fn position(&self, channel: &[u8]) -> Option<usize> {
        let channel = std::str::from_utf8(channel).ok()?;
        self.index.get(channel).copied()
    }

    /// Takes a message on a beat channel (one not of this instance's is ignored).
    pub fn hear(&mut self, channel: &[u8], payload: &[u8]) {
        let round = std::str::from_utf8(payload)
            .ok()
            .and_then(|round| round.parse::<u64>().ok());
        if let (Some(at), Some(round)) = (self.position(channel), round) {
            self.heard[at] = self.heard[at].max(round);
            if self.unconfirmed[at].is_some_and(|from| round >= from) {
                self.unconfirmed[at] = None;
            }
        }
    }

    /// The channel at `at` is subscribed again; until a beat comes on it, its subscription is
    /// unconfirmed. After its slot moved to another shard, the beats published while it moved
    /// were lost with the move (sharded pub/sub drops them), not by a wedge, so the rounds sent
    /// so far are not held against it; from here on it must bring the next rounds like any
    /// channel. Subscribed once more because it stayed unheard, the rounds it missed still
    /// count, so a channel that never comes back is wedged within the usual bound. Returns the
    /// round to probe it with at once, if one was sent.
    pub fn rejoined(&mut self, at: usize, why: Rejoin) -> Option<String> {
        if why == Rejoin::Moved {
            self.heard[at] = self.heard[at].max(self.sent);
        }
        self.unconfirmed[at] = Some(self.sent);
        (self.sent > 0).then(|| self.sent.to_string())
    }

    /// The channels subscribed again before the last round went out, and not heard since:
    /// their subscription is to be made again.
    pub fn unconfirmed(&self) -> Vec<usize> {
        let sent = self.sent;
        (0..self.channels.len())
            .filter(|&at| self.unconfirmed[at].is_some_and(|from| from < sent))
            .collect()
    }

    pub fn verdict(&self) -> Verdict {
        let oldest = self.heard.iter().copied().min().unwrap_or(self.sent);
        if oldest >= self.sent {
            Verdict::Heard
        } else if self.sent - oldest > ROUNDS_LATE {
            Verdict::Wedged
        } else {
            Verdict::Pending
        }
    }

    /// The next round's payload, to publish on every channel.
    pub fn next_round(&mut self) -> String {
        self.sent += 1;
        self.sent.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_subscribed_again_after_its_slot_moved_counts_from_there() {
        let mut beats = Beats::sharded(InstanceId::random());
        let channels = beats.channels().to_vec();
        for _ in 0..=ROUNDS_LATE {
            let round = beats.next_round();
            for channel in &channels[1..] {
                beats.hear(channel.as_bytes(), round.as_bytes());
            }
        }
        assert_eq!(
            beats.verdict(),
            Verdict::Wedged,
            "its beats were lost as it moved"
        );

        assert_eq!(beats.position(channels[0].as_bytes()), Some(0));
        assert_eq!(beats.position(b"chat:{p0}:beat:someone-else"), None);
        beats.rejoined(0, Rejoin::Moved);
        assert_eq!(beats.verdict(), Verdict::Heard);
        for _ in 0..ROUNDS_LATE {
            let round = beats.next_round();
            for channel in &channels[1..] {
                beats.hear(channel.as_bytes(), round.as_bytes());
            }
            assert_eq!(beats.verdict(), Verdict::Pending);
        }
        beats.next_round();
        assert_eq!(beats.verdict(), Verdict::Wedged, "and then stayed silent");
    }

    #[test]
    fn a_channel_subscribed_again_is_made_again_until_a_beat_comes_on_it() {
        let mut beats = Beats::sharded(InstanceId::random());
        let channels = beats.channels().to_vec();
        let hear_all_but_the_first = |beats: &mut Beats, round: &str| {
            for channel in &channels[1..] {
                beats.hear(channel.as_bytes(), round.as_bytes());
            }
        };
        let round = beats.next_round();
        hear_all_but_the_first(&mut beats, &round);
        assert_eq!(
            beats.rejoined(0, Rejoin::Moved).as_deref(),
            Some("1"),
            "probed at once"
        );
        assert!(
            beats.unconfirmed().is_empty(),
            "the probe has a round to come"
        );

        let round = beats.next_round();
        hear_all_but_the_first(&mut beats, &round);
        assert_eq!(beats.unconfirmed(), [0], "a round went by and nothing came");
        assert_eq!(beats.rejoined(0, Rejoin::Unheard).as_deref(), Some("2"));
        assert!(beats.unconfirmed().is_empty());
        beats.next_round();
        assert_eq!(beats.unconfirmed(), [0]);
        beats.next_round();
        assert_eq!(
            beats.verdict(),
            Verdict::Wedged,
            "retries do not hold the bound off: heard up to 1, 4 sent"
        );

        beats.hear(channels[0].as_bytes(), b"2");
        assert!(beats.unconfirmed().is_empty(), "a beat from its retry on");
        assert_eq!(beats.rejoined(1, Rejoin::Moved).as_deref(), Some("4"));
        beats.hear(channels[1].as_bytes(), b"3");
        beats.next_round();
        assert_eq!(beats.unconfirmed(), [1], "an older round proves nothing");
    }

    #[test]
    fn a_subscription_is_wedged_once_a_channel_stays_silent_past_the_bound() {
        let mut beats = Beats::sharded(InstanceId::random());
        assert_eq!(beats.channels().len(), 128);
        assert_eq!(beats.verdict(), Verdict::Heard, "nothing sent yet");
        let round = beats.next_round();
        assert_eq!(beats.verdict(), Verdict::Pending);
        let channels = beats.channels().to_vec();
        for channel in &channels[1..] {
            beats.hear(channel.as_bytes(), round.as_bytes());
        }
        assert_eq!(beats.verdict(), Verdict::Pending, "one partition is late");
        beats.hear(channels[0].as_bytes(), round.as_bytes());
        assert_eq!(beats.verdict(), Verdict::Heard);

        for _ in 0..ROUNDS_LATE {
            beats.next_round();
            assert_eq!(beats.verdict(), Verdict::Pending);
        }
        let round = beats.next_round();
        assert_eq!(beats.verdict(), Verdict::Wedged);
        for channel in &channels {
            beats.hear(channel.as_bytes(), round.as_bytes());
        }
        assert_eq!(
            beats.verdict(),
            Verdict::Heard,
            "a late round covers the earlier"
        );
    }

    #[test]
    fn only_its_own_channels_and_rounds_count() {
        let mut beats = Beats::single(InstanceId::random());
        let other = Beats::single(InstanceId::random());
        beats.next_round();
        assert!(!beats.is_beat_channel(other.channels()[0].as_bytes()));
        beats.hear(other.channels()[0].as_bytes(), b"1");
        beats.hear(b"chat:room:x", b"1");
        let own = beats.channels()[0].clone();
        assert!(beats.is_beat_channel(own.as_bytes()));
        beats.hear(own.as_bytes(), b"not a round");
        assert_eq!(beats.verdict(), Verdict::Pending);
        beats.hear(own.as_bytes(), b"1");
        assert_eq!(beats.verdict(), Verdict::Heard);
    }
}
