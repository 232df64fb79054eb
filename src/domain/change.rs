//! What goes with messages that change: who may take a TALK back, and its reactions as storage
//! answers them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whose TALKs the sender of a DELETE may take back. (Only a TALK's author may edit it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Authority {
    /// Its own.
    #[default]
    Author,
    /// Anyone's: an `admin` (and, with room roles, the room's owners and moderators).
    Moderator,
}

/// One emoji's reactions on a TALK, as storage answers: how many, and who (the first 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reaction {
    pub emoji: String,
    #[schema(minimum = 1)]
    pub count: u32,
    /// Who reacted so, in the order they did; at most [`Reaction::MAX_SENDERS`].
    pub senders: Vec<String>,
}

impl Reaction {
    pub const MAX_SENDERS: usize = 100;
}
