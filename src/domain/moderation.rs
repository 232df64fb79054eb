//! Private rooms, room roles and moderation (identity mode): who may see a room, who holds
//! which role in it, and the actions that change that, each stored as a `MODERATION` event.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::bounded;
use super::{DomainError, Timestamp};

/// Who may see a room: anyone, or only those with a role in it (and `admin`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Public, Self::Private]
            .into_iter()
            .find(|visibility| visibility.as_str() == raw)
    }
}

/// A role in one room. Owners may do anything in it; moderators may remove, ban and mute
/// members and grant or revoke `member`; members may see a private room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Moderator,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Moderator => "moderator",
            Self::Member => "member",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Owner, Self::Moderator, Self::Member]
            .into_iter()
            .find(|role| role.as_str() == raw)
    }

    /// Whether it may remove, ban and mute, and delete anyone's message.
    pub fn moderates(self) -> bool {
        matches!(self, Self::Owner | Self::Moderator)
    }
}

/// What a `MODERATION` event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Grant,
    Revoke,
    Kick,
    Ban,
    Unban,
    Mute,
    Unmute,
}

impl Action {
    pub const ALL: [Self; 7] = [
        Self::Grant,
        Self::Revoke,
        Self::Kick,
        Self::Ban,
        Self::Unban,
        Self::Mute,
        Self::Unmute,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Revoke => "revoke",
            Self::Kick => "kick",
            Self::Ban => "ban",
            Self::Unban => "unban",
            Self::Mute => "mute",
            Self::Unmute => "unmute",
        }
    }

    /// Whether it is done to someone (kick, ban, mute and their undoing), rather than a role
    /// granted or revoked: those follow the rules of who may act on whom.
    pub fn disciplines(self) -> bool {
        !matches!(self, Self::Grant | Self::Revoke)
    }
}

/// Why a session was removed from a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Kicked,
    Banned,
    /// Its role in a private room was revoked.
    Revoked,
}

impl Removal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kicked => "kicked",
            Self::Banned => "banned",
            Self::Revoked => "revoked",
        }
    }
}

/// What a `MODERATION` event says, beside its `seq`, `sentAt` and who did it (`by`, also its
/// `sender`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Moderation {
    pub action: Action,
    /// The name it was done to.
    pub target: String,
    /// Who did it.
    pub by: String,
    /// A grant's role, or the role a revoke took away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub role: Option<Role>,
    /// When a ban or mute ends by itself (absent: when lifted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime, nullable = false)]
    pub until: Option<Timestamp>,
    /// Why, as the moderator wrote it (bans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
}

impl Moderation {
    pub fn new(action: Action, target: &super::Sender, by: &super::Sender) -> Self {
        Self {
            action,
            target: target.as_str().to_owned(),
            by: by.as_str().to_owned(),
            role: None,
            until: None,
            reason: None,
        }
    }

    /// A room's creator made its owner.
    pub fn owner(creator: &super::Sender) -> Self {
        Self {
            role: Some(Role::Owner),
            ..Self::new(Action::Grant, creator, creator)
        }
    }

    /// What it does to the sessions of its target that are in the room, in a room that is
    /// `private` or not.
    pub fn removes(&self, private: bool) -> Option<Removal> {
        match self.action {
            Action::Kick => Some(Removal::Kicked),
            Action::Ban => Some(Removal::Banned),
            Action::Revoke if private => Some(Removal::Revoked),
            _ => None,
        }
    }
}

/// A ban's or a mute's reason: 1 to 500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        bounded("reason", raw.trim(), Self::MAX_CHARS).map(Self)
    }

    pub fn into_string(self) -> String {
        self.0
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
    fn kicks_and_bans_remove_everywhere_and_a_revoke_only_from_a_private_room() {
        for private in [false, true] {
            assert_eq!(
                moderation(Action::Kick).removes(private),
                Some(Removal::Kicked)
            );
            assert_eq!(
                moderation(Action::Ban).removes(private),
                Some(Removal::Banned)
            );
            for stays in [Action::Grant, Action::Unban, Action::Mute, Action::Unmute] {
                assert_eq!(moderation(stays).removes(private), None);
            }
        }
        assert_eq!(moderation(Action::Revoke).removes(false), None);
        assert_eq!(
            moderation(Action::Revoke).removes(true),
            Some(Removal::Revoked)
        );
    }

    #[test]
    fn names_parse_back() {
        for role in [Role::Owner, Role::Moderator, Role::Member] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        for action in Action::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
        }
        assert_eq!(Visibility::parse("private"), Some(Visibility::Private));
        assert_eq!(Visibility::parse("Private"), None);
        assert!(Reason::parse(&"x".repeat(501)).is_err());
        assert!(Reason::parse("  ").is_err());
    }
}
