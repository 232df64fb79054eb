//! An event on its way to storage: what a frame or a request asks to append.

use super::{
    Authority, ClientMsgId, Emoji, EventKind, MessageText, Moderation, RoomId, Sender, Seq,
    SessionId,
};

/// An event not yet stored: it has no `seq` until the store gives it one.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub room_id: RoomId,
    pub kind: EventKind,
    pub sender: Sender,
    pub message: String,
    pub client_msg_id: Option<ClientMsgId>,
    /// The session (on the writer's instance) that an ENTER makes a member of the room, or a
    /// LEAVE stops being one: the membership is stored in the same transaction as the event.
    pub session: Option<SessionId>,
    /// The TALK a change (EDIT, DELETE, REACT, UNREACT) is about.
    pub target_seq: Option<Seq>,
    /// A REACT's or UNREACT's emoji.
    pub emoji: Option<Emoji>,
    /// The TALK a TALK answers.
    pub reply_to: Option<Seq>,
    /// Who sent it, as the room's rules see them.
    pub authority: Authority,
    /// What a MODERATION event does.
    pub moderation: Option<Box<Moderation>>,
    /// Sent by an identity whose token's roles include `bot`.
    pub bot: bool,
}

impl NewEvent {
    pub fn talk(room_id: RoomId, sender: Sender, message: MessageText) -> Self {
        Self::new(room_id, EventKind::Talk, sender, message.into_string())
    }

    /// A TALK that answers the TALK at `reply_to`.
    pub fn reply(self, reply_to: Option<Seq>) -> Self {
        Self { reply_to, ..self }
    }

    /// The author's new text for the TALK at `target`.
    pub fn edit(room_id: RoomId, sender: Sender, target: Seq, message: MessageText) -> Self {
        Self {
            target_seq: Some(target),
            ..Self::new(room_id, EventKind::Edit, sender, message.into_string())
        }
    }

    /// Takes back the TALK at `target` (whose, the sender's authority and role say).
    pub fn delete(room_id: RoomId, sender: Sender, target: Seq) -> Self {
        Self {
            target_seq: Some(target),
            ..Self::new(room_id, EventKind::Delete, sender, String::new())
        }
    }

    /// A role granted or revoked, a kick, a ban or a mute (or one lifted), by `by`.
    pub fn moderation(
        room_id: RoomId,
        by: Sender,
        moderation: Moderation,
        authority: Authority,
    ) -> Self {
        Self {
            moderation: Some(Box::new(moderation)),
            authority,
            ..Self::new(room_id, EventKind::Moderation, by, String::new())
        }
    }

    /// A REACT or UNREACT (`kind`) with `emoji` on the TALK at `target`.
    pub fn reaction(
        room_id: RoomId,
        kind: EventKind,
        sender: Sender,
        target: Seq,
        emoji: Emoji,
    ) -> Self {
        Self {
            target_seq: Some(target),
            emoji: Some(emoji),
            ..Self::new(room_id, kind, sender, String::new())
        }
    }

    /// The session's ENTER: stored, it makes the session a member.
    pub fn enter(room_id: RoomId, sender: Sender, session: SessionId) -> Self {
        let message = format!("{} entered the room.", sender.as_str());
        Self {
            session: Some(session),
            ..Self::new(room_id, EventKind::Enter, sender, message)
        }
    }

    /// The session's LEAVE: stored, the session is no longer a member.
    pub fn leave(room_id: RoomId, sender: Sender, session: SessionId) -> Self {
        Self {
            session: Some(session),
            ..Self::departure(room_id, sender)
        }
    }

    /// A LEAVE for a member whose membership is already gone (its instance died).
    pub fn departure(room_id: RoomId, sender: Sender) -> Self {
        let message = format!("{} left the room.", sender.as_str());
        Self::new(room_id, EventKind::Leave, sender, message)
    }

    /// Sent by one the room's rules see as `authority`.
    pub fn acting_as(self, authority: Authority) -> Self {
        Self { authority, ..self }
    }

    /// Sent by a bot, or not.
    pub fn by_bot(self, bot: bool) -> Self {
        Self { bot, ..self }
    }

    /// Echoes the `clientMsgId` of the frame that caused this event.
    pub fn correlated(self, client_msg_id: Option<ClientMsgId>) -> Self {
        Self {
            client_msg_id,
            ..self
        }
    }

    /// The bytes of text it carries, a lower bound of its size on the wire.
    pub fn text_bytes(&self) -> usize {
        let id = self
            .client_msg_id
            .as_ref()
            .map_or(0, |id| id.as_str().len());
        let emoji = self.emoji.as_ref().map_or(0, |emoji| emoji.as_str().len());
        self.message.len() + self.sender.as_str().len() + id + emoji
    }

    fn new(room_id: RoomId, kind: EventKind, sender: Sender, message: String) -> Self {
        Self {
            room_id,
            kind,
            sender,
            message,
            client_msg_id: None,
            session: None,
            target_seq: None,
            emoji: None,
            reply_to: None,
            authority: Authority::Anyone,
            moderation: None,
            bot: false,
        }
    }
}
