//! Where a session's identity stands in one room under its rules: learnt with its ENTER (or a
//! subscription's lookup), then changed by each MODERATION event about it that the session
//! delivers, in `seq` order. Checked on every frame without a storage round trip.

use crate::domain::{Moderation, Removal, Seq, Standing};

#[derive(Debug, Default)]
pub(super) struct Ruled {
    standing: Standing,
    /// The seq the standing is as of: events at or below it are in it already.
    through: Seq,
}

impl Ruled {
    /// A standing read from storage as of `as_of`; an older one than known changes nothing.
    pub(super) fn learn(&mut self, standing: Standing, as_of: Seq) {
        if as_of >= self.through {
            self.standing = standing;
            self.through = as_of;
        }
    }

    /// A MODERATION event about this identity at `seq`, delivered: what it does to the
    /// session (nothing when its standing has it already).
    pub(super) fn apply(&mut self, seq: Seq, moderation: &Moderation) -> Option<Removal> {
        if seq <= self.through {
            return None;
        }
        self.through = seq;
        let removal = moderation.removes(self.standing.private);
        self.standing = self.standing.after(moderation);
        removal
    }

    pub(super) fn standing(&self) -> Standing {
        self.standing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Action, Sender, Timestamp};

    fn seq(raw: i64) -> Seq {
        Seq::new(raw).unwrap()
    }

    fn about_bob(action: Action) -> Moderation {
        let (bob, alice) = (
            Sender::parse("bob").unwrap(),
            Sender::parse("alice").unwrap(),
        );
        Moderation::new(action, &bob, &alice)
    }

    #[test]
    fn events_the_standing_has_already_change_nothing() {
        let mut ruled = Ruled::default();
        let muted = Standing {
            private: true,
            muted: Some(crate::domain::Sanction { until: None }),
        };
        ruled.learn(muted, seq(10));
        assert_eq!(ruled.apply(seq(9), &about_bob(Action::Unmute)), None);
        assert!(ruled.standing().muted_at(Timestamp::now()));
        assert_eq!(ruled.apply(seq(11), &about_bob(Action::Unmute)), None);
        assert!(!ruled.standing().muted_at(Timestamp::now()));
        ruled.learn(muted, seq(10));
        assert!(
            !ruled.standing().muted_at(Timestamp::now()),
            "an older standing is not learnt"
        );
        assert_eq!(
            ruled.apply(seq(12), &about_bob(Action::Revoke)),
            Some(Removal::Revoked)
        );
        assert_eq!(ruled.apply(seq(12), &about_bob(Action::Kick)), None);
    }
}
