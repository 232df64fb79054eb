use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::DomainError;
use super::text::bounded;

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
}
