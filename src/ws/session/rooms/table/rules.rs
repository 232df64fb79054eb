//! The session's standing under each room's rules, kept with the room it is about: learnt,
//! changed by the MODERATION events about it, and checked before it says anything.

use super::RoomTable;
use crate::domain::{Moderation, Removal, RoomId, Sender, Seq, Standing, Timestamp};
use crate::ws::dialect::chat::WsError;

impl RoomTable {
    /// Learns where the session's identity stands in a room, as of `as_of`.
    pub fn stand(&mut self, room_id: RoomId, standing: Standing, as_of: Seq) {
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.ruled.learn(standing, as_of);
        }
    }

    /// A MODERATION event about the session's identity, delivered at `seq`: whether it removes
    /// the session from the room.
    pub fn ruled(&mut self, room_id: RoomId, seq: Seq, moderation: &Moderation) -> Option<Removal> {
        self.rooms.get_mut(&room_id)?.ruled.apply(seq, moderation)
    }

    /// Checks that the session may talk in the room (TALK, EDIT, REACT, TYPING): a member,
    /// under this sender, and not muted.
    pub fn check_voice(
        &self,
        room_id: RoomId,
        sender: &Sender,
        action: &'static str,
    ) -> Result<(), WsError> {
        let standing = self.present(room_id, sender, action)?.ruled.standing();
        // The clock is read only for a session that is muted at all.
        match standing.muted.is_some() && standing.muted_at(Timestamp::now()) {
            true => Err(WsError::Muted(room_id)),
            false => Ok(()),
        }
    }
}
