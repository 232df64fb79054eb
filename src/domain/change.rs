//! What goes with messages that change: who may take a TALK back, and its reactions as storage
//! answers them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who sends a frame, as far as the rooms' rules go: what a DELETE may take back (only a
/// TALK's author may edit it), and whether private rooms, bans and roles apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Authority {
    /// Identity is off: no room has rules, and a DELETE takes back only its sender's TALKs.
    #[default]
    Anyone,
    /// A signed-in identity: the room's rules apply, and its role there says what it may.
    Signed,
    /// An identity with the `admin` role: above every room's rules.
    Admin,
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
