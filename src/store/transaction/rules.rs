//! The rooms' rules inside a batch's transaction (identity mode), checked under the room's
//! lock against what is stored and what the events before in the batch changed: an ENTER
//! into a private room without a role is refused as if the room did not exist, a banned
//! name's ENTER is refused, a DELETE of someone else's TALK needs a role that moderates, and
//! each MODERATION event must be allowed to whoever sends it. An accepted ENTER learns the
//! entrant's standing; an accepted MODERATION event makes its change in the same transaction.

use std::collections::HashMap;

use super::Pending;
use crate::domain::{
    Action, Authority, Event, EventKind, Moderation, Role, RoomId, Sanction, Standing, Timestamp,
    Visibility,
};
use crate::store::rules::{Admission, RulesTx};
use crate::store::{Refused, StoreError, WriteTx};

/// What the batch's ruled events find: each room's visibility and owners, each name's place.
#[derive(Debug)]
pub(super) struct Rulebook {
    rooms: HashMap<RoomId, (Visibility, u32)>,
    names: HashMap<(RoomId, String), Admission>,
    now: Timestamp,
}

/// Whether the rules have a say in this event: a signed-in sender's ENTER, DELETE or
/// MODERATION.
fn ruled(pending: &Pending) -> bool {
    pending.authority != Authority::Anyone
        && matches!(
            pending.event.kind,
            EventKind::Enter | EventKind::Delete | EventKind::Moderation
        )
}

impl Rulebook {
    /// Reads what the batch's ruled events need; nothing when it has none.
    pub async fn load(tx: &mut dyn WriteTx, batch: &[Pending]) -> Result<Self, StoreError> {
        let mut book = Self {
            rooms: HashMap::new(),
            names: HashMap::new(),
            now: Timestamp::now(),
        };
        let ruled: Vec<&Event> = batch
            .iter()
            .filter(|p| ruled(p))
            .map(|p| &p.event)
            .collect();
        if ruled.is_empty() {
            return Ok(book);
        }
        let mut rooms: Vec<RoomId> = ruled.iter().map(|event| event.room_id).collect();
        rooms.sort_unstable();
        rooms.dedup();
        book.rooms = RulesTx::room_rules(tx, &rooms).await?;
        let mut keys: Vec<(RoomId, String)> = Vec::new();
        for event in ruled {
            keys.push((event.room_id, event.sender.clone()));
            if let Some(moderation) = &event.moderation {
                keys.push((event.room_id, moderation.target.clone()));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        book.names = RulesTx::admissions(tx, &keys).await?;
        Ok(book)
    }

    fn place(&self, room_id: RoomId, name: &str) -> Admission {
        self.names
            .get(&(room_id, name.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Whether its sender may take back anyone's TALK in the room.
    pub fn moderates(&self, pending: &Pending) -> bool {
        let event = &pending.event;
        match pending.authority {
            Authority::Anyone => false,
            Authority::Admin => true,
            Authority::Signed => self
                .place(event.room_id, &event.sender)
                .role
                .is_some_and(Role::moderates),
        }
    }

    /// Whether the event may be stored, given what came before it; an ENTER's standing.
    pub fn check(&self, pending: &Pending) -> Result<Option<Standing>, Refused> {
        if !ruled(pending) {
            return Ok(None);
        }
        let event = &pending.event;
        let Some(&(visibility, owners)) = self.rooms.get(&event.room_id) else {
            return Err(Refused::RoomGone);
        };
        let admin = pending.authority == Authority::Admin;
        match (&event.moderation, event.kind) {
            (None, EventKind::Enter) => self.enter(event, visibility, admin).map(Some),
            (Some(moderation), _) => {
                let actor = self.place(event.room_id, &event.sender);
                let target = self.place(event.room_id, &moderation.target);
                if !admin {
                    allowed(moderation, actor.role, target.role)?;
                }
                self.changes(moderation, &target, owners).map(|()| None)
            }
            _ => Ok(None),
        }
    }

    fn enter(
        &self,
        event: &Event,
        visibility: Visibility,
        admin: bool,
    ) -> Result<Standing, Refused> {
        let place = self.place(event.room_id, &event.sender);
        let private = visibility == Visibility::Private;
        if !admin && private && place.role.is_none() {
            return Err(Refused::RoomGone);
        }
        if !admin && place.banned_at(self.now) {
            return Err(Refused::Banned);
        }
        Ok(Standing {
            private,
            muted: place.mute.filter(|mute| mute.in_force(self.now)),
        })
    }

    /// Whether the action changes anything, and keeps the room an owner.
    fn changes(
        &self,
        moderation: &Moderation,
        target: &Admission,
        owners: u32,
    ) -> Result<(), Refused> {
        let last_owner = target.role == Some(Role::Owner) && owners <= 1;
        match moderation.action {
            Action::Grant if target.role == moderation.role => {
                Err(Refused::NoChange("they hold that role already"))
            }
            Action::Grant if last_owner && moderation.role != Some(Role::Owner) => {
                Err(Refused::LastOwner)
            }
            Action::Revoke if target.role.is_none() => {
                Err(Refused::NoChange("they hold no role in the room"))
            }
            Action::Revoke if last_owner => Err(Refused::LastOwner),
            Action::Unban if !target.banned_at(self.now) => {
                Err(Refused::NoChange("they are not banned"))
            }
            Action::Unmute if !target.muted_at(self.now) => {
                Err(Refused::NoChange("they are not muted"))
            }
            _ => Ok(()),
        }
    }

    /// Takes a stored MODERATION event into account for the events after it, and names on a
    /// revoke the role it took away.
    pub fn record(&mut self, event: &mut Event) {
        let room_id = event.room_id;
        let Some(moderation) = event.moderation.as_deref_mut() else {
            return;
        };
        let key = (room_id, moderation.target.clone());
        let place = self.names.entry(key).or_default();
        let was_owner = place.role == Some(Role::Owner);
        match moderation.action {
            Action::Grant => place.role = moderation.role,
            Action::Revoke => moderation.role = place.role.take(),
            Action::Ban => {
                place.ban = Some(Sanction {
                    until: moderation.until,
                })
            }
            Action::Unban => place.ban = None,
            Action::Mute => {
                place.mute = Some(Sanction {
                    until: moderation.until,
                })
            }
            Action::Unmute => place.mute = None,
            Action::Kick => {}
        }
        let is_owner = place.role == Some(Role::Owner);
        if let Some((_, owners)) = self.rooms.get_mut(&room_id) {
            match (was_owner, is_owner) {
                (false, true) => *owners += 1,
                (true, false) => *owners = owners.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// Makes the changes the batch's stored MODERATION events record.
    pub async fn apply(tx: &mut dyn WriteTx, stored: &[&Event]) -> Result<(), StoreError> {
        for event in stored {
            if let Some(moderation) = &event.moderation {
                RulesTx::moderate(tx, event.room_id, moderation, event.sent_at).await?;
            }
        }
        Ok(())
    }
}

/// Whether one with role `actor` may do this to one with role `target` (an `admin` may do
/// anything): owners may grant and revoke any role, moderators only `member`; owners and
/// moderators may kick, ban and mute, but nobody an owner, and no moderator another one.
fn allowed(
    moderation: &Moderation,
    actor: Option<Role>,
    target: Option<Role>,
) -> Result<(), Refused> {
    let forbidden = |why| Err(Refused::Forbidden(why));
    match (actor, moderation.action.disciplines()) {
        (Some(Role::Owner), false) => Ok(()),
        (Some(Role::Moderator), false) => {
            let member = |role: Option<Role>| role.is_none_or(|role| role == Role::Member);
            let grants_member = moderation.role.is_none_or(|role| role == Role::Member);
            match grants_member && member(target) {
                true => Ok(()),
                false => forbidden("a moderator may grant and revoke only the member role"),
            }
        }
        (_, false) => forbidden("only the room's owners and moderators may manage its roles"),
        (Some(role), true) if role.moderates() => match (role, target) {
            (_, Some(Role::Owner)) => forbidden("only an admin may do that to an owner"),
            (Role::Moderator, Some(Role::Moderator)) => {
                forbidden("a moderator may not do that to another moderator")
            }
            _ => Ok(()),
        },
        (_, true) => forbidden("only the room's owners and moderators may do that"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Sender;

    fn moderation(action: Action, role: Option<Role>) -> Moderation {
        let (bob, alice) = (
            Sender::parse("bob").unwrap(),
            Sender::parse("alice").unwrap(),
        );
        Moderation {
            role,
            ..Moderation::new(action, &bob, &alice)
        }
    }

    #[test]
    fn who_may_do_what_to_whom() {
        use Role::{Member, Moderator, Owner};
        let grant = |role| moderation(Action::Grant, Some(role));
        let kick = moderation(Action::Kick, None);
        let cases = [
            (grant(Owner), Some(Owner), Some(Owner), true),
            (grant(Moderator), Some(Owner), None, true),
            (grant(Member), Some(Moderator), None, true),
            (grant(Moderator), Some(Moderator), None, false),
            (grant(Member), Some(Moderator), Some(Moderator), false),
            (grant(Member), Some(Member), None, false),
            (grant(Member), None, None, false),
            (
                moderation(Action::Revoke, None),
                Some(Moderator),
                Some(Member),
                true,
            ),
            (
                moderation(Action::Revoke, None),
                Some(Moderator),
                Some(Owner),
                false,
            ),
            (kick.clone(), Some(Owner), Some(Moderator), true),
            (kick.clone(), Some(Owner), Some(Owner), false),
            (kick.clone(), Some(Moderator), None, true),
            (kick.clone(), Some(Moderator), Some(Member), true),
            (kick.clone(), Some(Moderator), Some(Moderator), false),
            (kick.clone(), Some(Member), None, false),
            (kick, None, None, false),
        ];
        for (moderation, actor, target, ok) in cases {
            let allowed = allowed(&moderation, actor, target);
            assert_eq!(
                allowed.is_ok(),
                ok,
                "{:?} by {actor:?} on {target:?}",
                moderation.action
            );
        }
    }
}
