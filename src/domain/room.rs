use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::text::bounded;
use super::{DomainError, Sender, Visibility};

/// A room's identity: a UUID, always shown in its lowercase hyphenated form.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct RoomId(Uuid);

impl RoomId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Uuid::try_parse(raw)
            .map(Self)
            .map_err(|_| DomainError::NotUuid { field: "roomId" })
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn uuid(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A room to create: its name, who may see it, and (identity mode) its first owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoom {
    pub name: RoomName,
    pub visibility: Visibility,
    pub owner: Option<Sender>,
}

impl NewRoom {
    /// A public room with no owner, as identity off makes them.
    pub fn public(name: RoomName) -> Self {
        Self {
            name,
            visibility: Visibility::Public,
            owner: None,
        }
    }
}

/// A room's display name: trimmed, 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

impl RoomName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        bounded("name", raw.trim(), Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How much of its history a room keeps: events younger than `max_age_seconds`, and its newest
/// `max_events`; past either, events are erased (never the room's newest). Neither: all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    /// Keep events younger than this many seconds (1 to 100 years' worth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3_155_760_000_i64)]
    pub max_age_seconds: Option<u64>,
    /// Keep the room's newest this many events (1 or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_events: Option<u64>,
}

impl Retention {
    /// A hundred years: longer cannot be meant, and keeps every time computable.
    pub const MAX_AGE_SECONDS: u64 = 3_155_760_000;

    /// Checks both limits' ranges.
    pub fn validated(self) -> Result<Self, DomainError> {
        let age_ok = self
            .max_age_seconds
            .is_none_or(|age| (1..=Self::MAX_AGE_SECONDS).contains(&age));
        let events_ok = self
            .max_events
            .is_none_or(|events| (1..=i64::MAX as u64).contains(&events));
        match (age_ok, events_ok) {
            (true, true) => Ok(self),
            (false, _) => Err(DomainError::OutOfRange {
                field: "retention.maxAgeSeconds",
                range: "1 to 3155760000",
            }),
            (_, false) => Err(DomainError::OutOfRange {
                field: "retention.maxEvents",
                range: "1 to 9223372036854775807",
            }),
        }
    }

    /// Whether it keeps everything.
    pub fn keeps_all(self) -> bool {
        self.max_age_seconds.is_none() && self.max_events.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_name_is_trimmed() {
        assert_eq!(RoomName::parse("  general \n").unwrap().as_str(), "general");
    }

    #[test]
    fn a_blank_room_name_is_refused() {
        assert_eq!(
            RoomName::parse("   "),
            Err(DomainError::Empty { field: "name" })
        );
    }

    #[test]
    fn a_room_name_of_100_characters_is_accepted_and_101_refused() {
        assert!(RoomName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            RoomName::parse(&"é".repeat(101)),
            Err(DomainError::TooLong {
                field: "name",
                max: 100
            })
        );
    }

    #[test]
    fn a_room_id_round_trips_through_its_display_form() {
        let id = RoomId::random();
        assert_eq!(RoomId::parse(&id.to_string()), Ok(id));
        assert!(RoomId::parse("not-a-uuid").is_err());
    }

    #[test]
    fn retention_limits_are_1_or_more_and_an_age_at_most_a_century() {
        let age = |seconds| Retention {
            max_age_seconds: Some(seconds),
            max_events: None,
        };
        assert!(age(1).validated().is_ok());
        assert!(age(Retention::MAX_AGE_SECONDS).validated().is_ok());
        assert!(age(0).validated().is_err());
        assert!(age(Retention::MAX_AGE_SECONDS + 1).validated().is_err());
        let events = Retention {
            max_age_seconds: None,
            max_events: Some(0),
        };
        assert!(events.validated().is_err());
        assert!(Retention::default().keeps_all());
    }
}
