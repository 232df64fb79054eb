//! What a STOMP frame asks of the session: CONNECT agrees on a version and heart-beats, SEND
//! becomes the `/ws/chat` frame its body is, SUBSCRIBE and UNSUBSCRIBE name a room topic or the
//! errors queue; and what a frame over the rate limit gets instead.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{
    Command, ERRORS, Fatal, Frame, HEART_BEAT, NOTICES_BY_DEFAULT, PUBLISH, Stomp, Subscription,
    TOPICS, VERSIONS,
};
use crate::domain::{RoomId, Sender, Seq};
use crate::ws::dialect::chat::{Echo, Refusal, WsError, parse};

impl Stomp {
    /// What a frame over the frame rate limit gets, before anything it asks is done: before
    /// CONNECT, an ERROR and the end; after it, a refusal (`RATE_LIMITED`, echoing what a
    /// SEND's body names and any receipt).
    pub fn limited(&self, frame: &Frame, signed_as: Option<&Sender>) -> Command {
        let receipt = frame.header("receipt").map(str::to_owned);
        if self.version.is_none() {
            return Command::Fatal(Fatal::rate_limited().answering(receipt));
        }
        let sent = (frame.command == "SEND").then(|| self.send(frame, receipt.clone(), signed_as));
        let echo = match sent {
            Some(Command::Chat(_, echo)) => echo,
            Some(Command::Refuse(refusal)) => refusal.echo,
            _ => Echo {
                receipt,
                ..Echo::default()
            },
        };
        Command::Refuse(Refusal {
            error: WsError::RateLimited,
            echo,
        })
    }

    /// What one frame asks for.
    pub fn command(&mut self, frame: Frame, signed_as: Option<&Sender>) -> Command {
        let receipt = frame.header("receipt").map(str::to_owned);
        match (self.version.is_some(), frame.command.as_str()) {
            (false, "CONNECT" | "STOMP") => self.connect(&frame),
            (false, _) => Command::Fatal(Fatal::new("NOT_CONNECTED", "send CONNECT first")),
            (true, "CONNECT" | "STOMP") => {
                Command::Fatal(Fatal::new("ALREADY_CONNECTED", "already connected"))
            }
            (true, "SEND") => self.send(&frame, receipt, signed_as),
            (true, "SUBSCRIBE") => self.subscribe(&frame, receipt),
            (true, "UNSUBSCRIBE") => self.unsubscribe(&frame, receipt),
            (true, "ACK" | "NACK") => Command::Receipt(receipt),
            (true, "DISCONNECT") => Command::Disconnect { receipt },
            (true, "BEGIN" | "COMMIT" | "ABORT") => Command::Fatal(
                Fatal::new("UNSUPPORTED", "transactions are not supported").answering(receipt),
            ),
            (true, other) => Command::Fatal(
                Fatal::new("UNSUPPORTED", format!("unknown command {other}")).answering(receipt),
            ),
        }
    }

    /// Agrees on the newest version both speak (1.0 when the client names none), and the
    /// heart-beats.
    fn connect(&mut self, frame: &Frame) -> Command {
        let offered = frame.header("accept-version").unwrap_or("1.0");
        let Some(version) = VERSIONS
            .into_iter()
            .find(|version| offered.split(',').any(|v| v.trim() == *version))
        else {
            let mut fatal = Fatal::new(
                "UNSUPPORTED_VERSION",
                format!("supported versions are {}", VERSIONS.join(",")),
            );
            fatal.version_header = true;
            return Command::Fatal(fatal);
        };
        self.version = Some(version);
        if version == "1.2" {
            self.decoder.decode_escapes();
        }
        let (cx, cy) = heart_beat(frame.header("heart-beat"));
        self.expect_every = (cx > 0).then(|| Duration::from_millis(cx.max(HEART_BEAT)));
        self.send_every = (cy > 0).then(|| Duration::from_millis(cy.max(HEART_BEAT)));
        Command::Connected {
            token: token(frame),
        }
    }

    /// A SEND to a chat destination: the chat frame its body is, with the destination's room
    /// (which wins over the body's) and, when the body has none, the identity's name.
    fn send(&self, frame: &Frame, receipt: Option<String>, signed_as: Option<&Sender>) -> Command {
        let echo = Echo {
            receipt: receipt.clone(),
            ..Echo::default()
        };
        let room = match frame.header("destination").map(destination_room) {
            Some(Ok(room)) => room,
            _ => {
                let error =
                    WsError::InvalidMessage(format!("SEND to {PUBLISH} or /app/rooms/{{roomId}}"));
                return Command::Refuse(Refusal { error, echo });
            }
        };
        match chat_text(&frame.body, room, signed_as).map(|text| parse(&text)) {
            Ok(Ok(chat)) => {
                let mut echo = Echo::from(&chat);
                echo.receipt = receipt;
                Command::Chat(chat, echo)
            }
            Ok(Err(mut refusal)) => {
                refusal.echo.receipt = receipt;
                Command::Refuse(refusal)
            }
            Err(error) => Command::Refuse(Refusal { error, echo }),
        }
    }

    fn subscribe(&mut self, frame: &Frame, receipt: Option<String>) -> Command {
        let (Some(id), Some(destination)) = (frame.header("id"), frame.header("destination"))
        else {
            let fatal = Fatal::new("INVALID_MESSAGE", "SUBSCRIBE needs an id and a destination");
            return Command::Fatal(fatal.answering(receipt));
        };
        if self.errors.as_deref() == Some(id) {
            return Command::Fatal(
                Fatal::new("INVALID_MESSAGE", "that id is in use").answering(receipt),
            );
        }
        if destination == ERRORS {
            self.errors = Some(id.to_owned());
            return Command::Receipt(receipt);
        }
        match room_subscription(frame, destination) {
            Ok((room_id, after, notices)) => Command::Subscribe(Subscription {
                id: id.to_owned(),
                destination: destination.to_owned(),
                room_id,
                after,
                notices,
                receipt,
            }),
            Err(fatal) => Command::Fatal(fatal.answering(receipt)),
        }
    }

    fn unsubscribe(&mut self, frame: &Frame, receipt: Option<String>) -> Command {
        let Some(id) = frame.header("id") else {
            return Command::Fatal(
                Fatal::new("INVALID_MESSAGE", "UNSUBSCRIBE needs an id").answering(receipt),
            );
        };
        if self.errors.as_deref() == Some(id) {
            self.errors = None;
            return Command::Receipt(receipt);
        }
        Command::Unsubscribe {
            id: id.to_owned(),
            receipt,
        }
    }
}

/// A client's `heart-beat:cx,cy`; 0,0 when absent or unreadable.
fn heart_beat(raw: Option<&str>) -> (u64, u64) {
    let Some((cx, cy)) = raw.and_then(|raw| raw.split_once(',')) else {
        return (0, 0);
    };
    let read = |value: &str| value.trim().parse().unwrap_or(0);
    (read(cx), read(cy))
}

/// The credentials of a CONNECT: `Authorization: Bearer <jwt>`, `passcode` or `token`.
pub(super) fn token(frame: &Frame) -> Option<String> {
    let bearer = ["Authorization", "authorization"]
        .into_iter()
        .find_map(|name| frame.header(name))
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    bearer
        .or_else(|| frame.header("passcode"))
        .or_else(|| frame.header("token"))
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
}

/// The room a topic destination names: None when it names no room topic, Err when its room id
/// is not a UUID.
fn topic_room(destination: &str) -> Option<Result<RoomId, ()>> {
    let id = TOPICS
        .into_iter()
        .find_map(|topic| destination.strip_prefix(topic))?;
    Some(RoomId::parse(id).map_err(|_| ()))
}

/// The room a SEND destination names, if it names one: `/app/rooms/{roomId}` does,
/// `/pub/chat/message` leaves it to the body. Err: no chat destination.
fn destination_room(destination: &str) -> Result<Option<RoomId>, ()> {
    if destination == PUBLISH {
        return Ok(None);
    }
    let id = destination.strip_prefix("/app/rooms/").ok_or(())?;
    RoomId::parse(id).map(Some).map_err(|_| ())
}

fn last_seq(raw: &str) -> Result<Seq, ()> {
    raw.trim()
        .parse::<u64>()
        .ok()
        .and_then(Seq::from_wire)
        .ok_or(())
}

/// The `/ws/chat` frame a SEND's body is: `QUIT` is `LEAVE`, the destination's room wins,
/// the identity's name stands in for a missing sender, and `lastSeq` (which belongs on
/// SUBSCRIBE) and `echo` (`/ws/chat`'s alone) are dropped.
fn chat_text(
    body: &[u8],
    room: Option<RoomId>,
    signed_as: Option<&Sender>,
) -> Result<String, WsError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| WsError::InvalidJson("the body is not UTF-8".to_owned()))?;
    let mut fields: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => {
            return Err(WsError::InvalidMessage(
                "a frame must be a JSON object".to_owned(),
            ));
        }
        Err(error) => return Err(WsError::InvalidJson(error.to_string())),
    };
    if fields.get("type").and_then(Value::as_str) == Some("QUIT") {
        fields.insert("type".into(), "LEAVE".into());
    }
    if let Some(room) = room {
        fields.insert("roomId".into(), room.to_string().into());
    }
    if let (None, Some(name)) = (fields.get("sender"), signed_as) {
        fields.insert("sender".into(), name.as_str().into());
    }
    fields.remove("lastSeq");
    // Every message on STOMP is a STOMP frame: the RECEIPT is the acknowledgement, and the
    // subscription gets every event in full.
    fields.remove("echo");
    Ok(Value::Object(fields).to_string())
}

/// What a SUBSCRIBE to a room asks for: the room, where to start, and whether its notices
/// come too.
fn room_subscription(
    frame: &Frame,
    destination: &str,
) -> Result<(RoomId, Option<Seq>, bool), Fatal> {
    let room_id = match topic_room(destination) {
        Some(Ok(room_id)) => room_id,
        Some(Err(())) | None => {
            let body = format!("no such destination {destination}");
            return Err(Fatal::new("UNKNOWN_DESTINATION", body));
        }
    };
    let after = frame
        .header("last-seq")
        .map(last_seq)
        .transpose()
        .map_err(|()| {
            let body = format!("last-seq must be an integer from 0 to {}", Seq::MAX);
            Fatal::new("INVALID_MESSAGE", body)
        })?;
    let notices = match frame.header("notices") {
        None => destination.starts_with(NOTICES_BY_DEFAULT),
        Some("true") => true,
        Some("false") => false,
        Some(_) => {
            return Err(Fatal::new(
                "INVALID_MESSAGE",
                "notices must be true or false",
            ));
        }
    };
    Ok((room_id, after, notices))
}
