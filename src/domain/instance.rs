use std::fmt;

use uuid::Uuid;

/// One running process of the service. Random at each start, so a process that restarts is a
/// new instance, and the members of the one before it are known to be gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(Uuid);

impl InstanceId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn uuid(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// One WebSocket connection on its instance: a member of a room is an (instance, session).
pub type SessionId = u64;
