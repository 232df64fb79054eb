//! What each event of a batch is checked against as it is numbered: the TALK it names and the
//! room's rules, as stored and as the events before it in the batch left them.

use super::Pending;
use super::changes::Targets;
use super::rules::Rulebook;
use crate::domain::Event;
use crate::store::Refused;

/// What each event is checked against as the batch is numbered.
pub(super) struct Checks<'a> {
    pub(super) targets: &'a mut Targets,
    pub(super) rules: &'a mut Rulebook,
}

impl Checks<'_> {
    /// Whether the event may be stored; an ENTER's standing goes with it.
    pub(super) fn check(&self, pending: &mut Pending) -> Result<(), Refused> {
        pending.standing = self.rules.check(pending)?;
        let moderates = self.rules.moderates(pending);
        self.targets.check(&pending.event, moderates)
    }

    pub(super) fn record(&mut self, event: &mut Event) {
        self.targets.record(event);
        self.rules.record(event);
    }
}
