//! What a valid client frame asks of its session, decided against its room table with no I/O:
//! an event to append and what queueing it does to the table, a read marker to raise, a
//! notice to send, nothing more to do (an ENTER into a room the session is in), or a refusal.

use super::rooms::RoomTable;
use crate::domain::{
    Authority, EventKind, NewEvent, Notice, ReadMarker, RoomId, Sender, Seq, SessionId,
};
use crate::ws::dialect::chat::{Action, Change, ClientFrame, WsError};

/// Who sends a session's frames: the session, and in identity mode the one sender it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speaker {
    pub session: SessionId,
    pub signed_as: Option<Sender>,
    /// Whose TALKs it may delete: an `admin`'s identity may delete anyone's.
    pub authority: Authority,
    /// Its identity is a bot's: its events say so.
    pub bot: bool,
}

impl Speaker {
    /// A session not signed in (yet): any sender it enters a room with.
    pub fn anyone(session: SessionId) -> Self {
        Self {
            session,
            signed_as: None,
            authority: Authority::Anyone,
            bot: false,
        }
    }
}

/// What a frame asks for.
#[derive(Debug)]
pub enum Plan {
    Append(Append),
    /// A READ: the sender's marker to raise (through the writer).
    Read(ReadMarker),
    /// A TYPING notice, for the room's other sessions at once.
    Notice(Notice),
    /// Nothing more (an ENTER into a room the session is in).
    Nothing,
}

/// An event to append for a frame.
#[derive(Debug)]
pub struct Append {
    pub event: NewEvent,
    pub effect: Effect,
}

/// What queueing the append does to the room table.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Join before the ENTER is queued, so its own event reaches the session too.
    Join {
        sender: Sender,
        resume_after: Option<Seq>,
        echo: bool,
    },
    /// Nothing more is delivered from the room while its LEAVE is stored.
    Leave,
    None,
}

pub fn plan(frame: ClientFrame, rooms: &mut RoomTable, speaker: &Speaker) -> Result<Plan, WsError> {
    let ClientFrame {
        room_id,
        sender,
        client_msg_id,
        action,
    } = frame;
    if let Some(name) = speaker.signed_as.as_ref().filter(|name| **name != sender) {
        return Err(WsError::NotSignedInAs(name.as_str().to_owned()));
    }
    let (event, effect) = match action {
        Action::Enter { last_seq, echo } => {
            match enter(room_id, sender, last_seq, echo, rooms, speaker)? {
                Some(append) => append,
                None => return Ok(Plan::Nothing),
            }
        }
        Action::Talk { message, reply_to } => {
            rooms.check_voice(room_id, &sender, "TALK")?;
            let talk = NewEvent::talk(room_id, sender, message).reply(reply_to);
            (talk, Effect::None)
        }
        Action::Change(change) => {
            may_change(rooms, room_id, &sender, &change)?;
            (self::change(room_id, sender, change), Effect::None)
        }
        Action::Leave => {
            rooms.check(room_id, &sender, "LEAVE")?;
            let leave = NewEvent::leave(room_id, sender, speaker.session);
            (leave, Effect::Leave)
        }
        Action::Typing => {
            rooms.check_voice(room_id, &sender, "TYPING")?;
            let sender = sender.into_string();
            return Ok(Plan::Notice(Notice::Typing { room_id, sender }));
        }
        Action::Read { seq } => {
            rooms.check(room_id, &sender, "READ")?;
            return Ok(Plan::Read(ReadMarker {
                room_id,
                sender,
                seq,
            }));
        }
    };
    let event = event
        .correlated(client_msg_id)
        .acting_as(speaker.authority)
        .by_bot(speaker.bot);
    Ok(Plan::Append(Append { event, effect }))
}

/// Whether the session may make this change in the room: a member under this sender, and
/// not muted when it says something (EDIT, REACT).
fn may_change(
    rooms: &RoomTable,
    room_id: RoomId,
    sender: &Sender,
    change: &Change,
) -> Result<(), WsError> {
    match change.speaks() {
        true => rooms.check_voice(room_id, sender, change.name()),
        false => rooms.check(room_id, sender, change.name()),
    }
}

/// The event an EDIT, DELETE, REACT or UNREACT frame asks for; whether the TALK it names
/// exists and whose it is, storage checks under the room's lock.
fn change(room_id: RoomId, sender: Sender, change: Change) -> NewEvent {
    match change {
        Change::Edit {
            target_seq,
            message,
        } => NewEvent::edit(room_id, sender, target_seq, message),
        Change::Delete { target_seq } => NewEvent::delete(room_id, sender, target_seq),
        Change::React { target_seq, emoji } => {
            NewEvent::reaction(room_id, EventKind::React, sender, target_seq, emoji)
        }
        Change::Unreact { target_seq, emoji } => {
            NewEvent::reaction(room_id, EventKind::Unreact, sender, target_seq, emoji)
        }
    }
}

/// An ENTER: the event to store and the join it makes; None in a room the session is in
/// already, where it only switches `echo` or replays from `lastSeq`.
fn enter(
    room_id: RoomId,
    sender: Sender,
    last_seq: Option<Seq>,
    echo: Option<bool>,
    rooms: &mut RoomTable,
    speaker: &Speaker,
) -> Result<Option<(NewEvent, Effect)>, WsError> {
    if rooms.sender(room_id).is_some() {
        rooms.check(room_id, &sender, "ENTER")?;
        if let Some(echo) = echo {
            rooms.set_echo(room_id, echo);
        }
        if let Some(after) = last_seq {
            rooms.rewind(room_id, after);
        }
        return Ok(None);
    }
    let effect = Effect::Join {
        sender: sender.clone(),
        resume_after: last_seq,
        echo: echo.unwrap_or(true),
    };
    Ok(Some((
        NewEvent::enter(room_id, sender, speaker.session),
        effect,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventKind, MessageText, RoomId};

    fn frame(room_id: RoomId, sender: &str, action: Action) -> ClientFrame {
        ClientFrame {
            room_id,
            sender: Sender::parse(sender).unwrap(),
            client_msg_id: None,
            action,
        }
    }

    fn talk() -> Action {
        Action::Talk {
            message: MessageText::parse("hi").unwrap(),
            reply_to: None,
        }
    }

    #[test]
    fn an_enter_joins_and_a_repeated_one_appends_nothing() {
        let mut rooms = RoomTable::default();
        let room = RoomId::random();
        let enter = Action::Enter {
            last_seq: None,
            echo: None,
        };

        let Plan::Append(first) = plan(
            frame(room, "alice", enter.clone()),
            &mut rooms,
            &Speaker::anyone(1),
        )
        .unwrap() else {
            panic!("an append")
        };
        assert_eq!(first.event.kind, EventKind::Enter);
        assert!(matches!(
            first.effect,
            Effect::Join {
                resume_after: None,
                ..
            }
        ));

        rooms.enter_for_test(room, "alice");
        assert!(matches!(
            plan(
                frame(room, "alice", enter.clone()),
                &mut rooms,
                &Speaker::anyone(1)
            ),
            Ok(Plan::Nothing)
        ));
        let other = plan(frame(room, "bob", enter), &mut rooms, &Speaker::anyone(1));
        assert!(matches!(other, Err(WsError::SenderMismatch { .. })));
    }

    #[test]
    fn signed_in_every_frame_must_carry_the_identitys_name() {
        let mut rooms = RoomTable::default();
        let room = RoomId::random();
        let alice = Speaker {
            signed_as: Some(Sender::parse("alice").unwrap()),
            ..Speaker::anyone(1)
        };
        let enter = Action::Enter {
            last_seq: None,
            echo: None,
        };

        let read = Action::Read { seq: Seq::ZERO };
        for action in [enter.clone(), talk(), Action::Leave, Action::Typing, read] {
            let refused = plan(frame(room, "mallory", action), &mut rooms, &alice);
            assert_eq!(refused.unwrap_err().code(), "SENDER_MISMATCH");
        }
        let own = plan(frame(room, " alice ", enter), &mut rooms, &alice);
        assert!(
            matches!(own, Ok(Plan::Append(_))),
            "the sender is trimmed before it is compared"
        );
    }

    #[test]
    fn talk_and_leave_need_the_room_and_its_sender() {
        let mut rooms = RoomTable::default();
        let room = RoomId::random();
        let refused = plan(
            frame(room, "alice", talk()),
            &mut rooms,
            &Speaker::anyone(1),
        );
        assert!(matches!(refused, Err(WsError::NotInRoom(_, "TALK"))));

        rooms.enter_for_test(room, "alice");
        let Ok(Plan::Append(said)) = plan(
            frame(room, "alice", talk()),
            &mut rooms,
            &Speaker::anyone(1),
        ) else {
            panic!("an append")
        };
        assert_eq!(
            (said.event.kind, said.effect),
            (EventKind::Talk, Effect::None)
        );
        let Ok(Plan::Append(left)) = plan(
            frame(room, "alice", Action::Leave),
            &mut rooms,
            &Speaker::anyone(1),
        ) else {
            panic!("an append")
        };
        assert_eq!(
            (left.event.kind, left.effect),
            (EventKind::Leave, Effect::Leave)
        );
    }

    #[test]
    fn typing_and_read_need_the_room_and_ask_for_a_notice_and_a_marker() {
        let mut rooms = RoomTable::default();
        let room = RoomId::random();
        for action in [Action::Typing, Action::Read { seq: Seq::ZERO }] {
            let refused = plan(
                frame(room, "alice", action),
                &mut rooms,
                &Speaker::anyone(1),
            );
            assert!(matches!(refused, Err(WsError::NotInRoom(..))));
        }

        rooms.enter_for_test(room, "alice");
        let typing = plan(
            frame(room, "alice", Action::Typing),
            &mut rooms,
            &Speaker::anyone(1),
        );
        assert!(matches!(typing, Ok(Plan::Notice(Notice::Typing { .. }))));
        let seq = Seq::new(7).unwrap();
        let read = plan(
            frame(room, "alice", Action::Read { seq }),
            &mut rooms,
            &Speaker::anyone(1),
        );
        assert!(matches!(read, Ok(Plan::Read(ReadMarker { seq: s, .. })) if s == seq));
        let other = plan(
            frame(room, "bob", Action::Typing),
            &mut rooms,
            &Speaker::anyone(1),
        );
        assert!(matches!(other, Err(WsError::SenderMismatch { .. })));
    }
}
