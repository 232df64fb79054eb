//! Where one name stands under a room's rules: a ban or mute in force, and what its session
//! needs to know (private room or not, muted until when), kept current by MODERATION events.

use super::{Action, Moderation, Timestamp};

/// A ban or a mute in force: until when (None: until lifted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sanction {
    pub until: Option<Timestamp>,
}

impl Sanction {
    pub fn in_force(self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

/// What one name's session needs to know of a room's rules, as they stood at an event: whether
/// the room is private (a revoke removes), and whether the name is muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub private: bool,
    pub muted: Option<Sanction>,
}

impl Standing {
    pub fn muted_at(self, now: Timestamp) -> bool {
        self.muted.is_some_and(|mute| mute.in_force(now))
    }

    /// The standing after a `MODERATION` event about this name.
    pub fn after(self, moderation: &Moderation) -> Self {
        let muted = match moderation.action {
            Action::Mute => Some(Sanction {
                until: moderation.until,
            }),
            Action::Unmute => None,
            _ => self.muted,
        };
        Self { muted, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Sender;

    fn moderation(action: Action) -> Moderation {
        let (bob, alice) = (
            Sender::parse("bob").unwrap(),
            Sender::parse("alice").unwrap(),
        );
        Moderation::new(action, &bob, &alice)
    }

    #[test]
    fn a_mute_holds_until_it_ends_or_is_lifted() {
        let now = Timestamp::from_millis(1_000);
        let muted = Standing::default().after(&Moderation {
            until: Some(Timestamp::from_millis(2_000)),
            ..moderation(Action::Mute)
        });
        assert!(muted.muted_at(now));
        assert!(!muted.muted_at(Timestamp::from_millis(2_000)));
        let forever = Standing::default().after(&moderation(Action::Mute));
        assert!(forever.muted_at(Timestamp::from_millis(i64::MAX)));
        assert!(!forever.after(&moderation(Action::Unmute)).muted_at(now));
        assert_eq!(forever.after(&moderation(Action::Kick)), forever);
    }
}
