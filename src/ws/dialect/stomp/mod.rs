//! STOMP 1.2 over WebSocket (`/ws/stomp`), for front ends written for Spring's STOMP chat
//! tutorials: what a STOMP frame asks of the session ([`Stomp::command`]), and the frames the
//! server sends ([`Stomp::message`] and the rest). The session does the work, exactly as for
//! `/ws/chat`: a `SEND` becomes the same `ClientFrame`, a `SUBSCRIBE` a reader of the room.

pub mod frame;

use std::time::Duration;

use bytestring::ByteString;
use serde_json::{Map, Value};
use uuid::Uuid;

pub use self::frame::{Decoded, Frame};
use self::frame::{Decoder, FrameError, encode, escape};
use super::chat::{ClientFrame, Echo, Refusal, WsError, parse};
use crate::domain::{RoomId, Sender, Seq};

/// The versions the server speaks, newest first.
const VERSIONS: [&str; 3] = ["1.2", "1.1", "1.0"];
/// The WebSocket subprotocols that carry them, in the server's order of preference.
pub const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];
/// What the server offers: it can send a heart-beat every 10 s and wants one as often.
const HEART_BEAT: u64 = 10_000;
/// Where Spring's idiom sends refusals a client can live with.
const ERRORS: &str = "/user/queue/errors";
/// Where the tutorials send chat frames, with the room in the body.
const PUBLISH: &str = "/pub/chat/message";

/// A room's topic: this service's own, then each spelling the tutorials use.
const TOPICS: [&str; 3] = ["/topic/rooms/", "/sub/chat/room/", "/topic/chat/room/"];
/// The topic that carries the room's notices (TYPING, READ) unless SUBSCRIBE says otherwise;
/// the tutorials' pages show every MESSAGE as a chat line, so theirs carry events only.
const NOTICES_BY_DEFAULT: &str = TOPICS[0];

/// What a frame asks of the session.
#[derive(Debug)]
pub enum Command {
    /// CONNECT was answered; `token`: the credentials it carried, for identity mode.
    Connected {
        token: Option<String>,
    },
    /// A chat frame, as `/ws/chat` would take it.
    Chat(ClientFrame, Echo),
    /// A chat frame that cannot be taken: refuse it.
    Refuse(Refusal),
    Subscribe(Subscription),
    Unsubscribe {
        id: String,
        receipt: Option<String>,
    },
    /// Took effect at once: answer its receipt, if it asked for one.
    Receipt(Option<String>),
    Disconnect {
        receipt: Option<String>,
    },
    /// The connection cannot go on: send this ERROR, then close.
    Fatal(Fatal),
}

/// A SUBSCRIBE to a room's topic, as parsed.
#[derive(Debug)]
pub struct Subscription {
    pub id: String,
    pub destination: String,
    pub room_id: RoomId,
    pub after: Option<Seq>,
    /// Whether the room's notices reach it too.
    pub notices: bool,
    pub receipt: Option<String>,
}

/// Why a STOMP connection ends at once, and what its ERROR frame says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal {
    message: &'static str,
    body: String,
    receipt: Option<String>,
    version_header: bool,
}

impl Fatal {
    fn new(message: &'static str, body: impl Into<String>) -> Self {
        Self {
            message,
            body: body.into(),
            receipt: None,
            version_header: false,
        }
    }

    /// The code its ERROR's `message` header carries.
    pub fn code(&self) -> &'static str {
        self.message
    }

    fn answering(mut self, receipt: Option<String>) -> Self {
        self.receipt = receipt;
        self
    }

    /// Over the frame rate limit where no refusal can be sent (before CONNECT, or in the
    /// middle of a frame).
    pub fn rate_limited() -> Self {
        Self::new("RATE_LIMITED", "too many frames; slow down")
    }

    /// No CONNECT came in time.
    pub fn connect_timeout() -> Self {
        Self::new("TIMEOUT", "no CONNECT in time")
    }

    /// No valid token where identity mode wants one.
    pub fn unauthorized(why: String) -> Self {
        Self::new("UNAUTHORIZED", why)
    }

    /// A SUBSCRIBE reusing a subscription's id.
    pub fn in_use(receipt: Option<String>) -> Self {
        Self::new("INVALID_MESSAGE", "a subscription with that id exists").answering(receipt)
    }

    pub fn unknown_room(room_id: RoomId, receipt: Option<String>) -> Self {
        Self::new("ROOM_NOT_FOUND", format!("room {room_id} does not exist")).answering(receipt)
    }
}

/// A connection's STOMP state.
#[derive(Debug)]
pub struct Stomp {
    decoder: Decoder,
    /// The version agreed at CONNECT; None before.
    version: Option<&'static str>,
    /// The subscription that takes refusals, if the client made one.
    errors: Option<String>,
    /// How often the client wants a heart-beat from the server, and sends its own.
    pub send_every: Option<Duration>,
    pub expect_every: Option<Duration>,
}

impl Stomp {
    pub fn new() -> Self {
        Self {
            decoder: Decoder::default(),
            version: None,
            errors: None,
            send_every: None,
            expect_every: None,
        }
    }

    /// Takes bytes of the stream; [`Stomp::next_decoded`] reads them, a frame at a time.
    pub fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
    }

    /// Whether bytes came that may hold a frame not read yet.
    pub fn unread(&self) -> bool {
        self.decoder.unread()
    }

    /// The next frame or heart-beat, when a whole one has arrived. Frames are decoded one at
    /// a time, as the session acts on them, so each is read as what came before it made the
    /// session (a 1.2 CONNECT's escapes, an identity it signed in with).
    pub fn next_decoded(&mut self) -> Option<Result<Decoded, Fatal>> {
        self.decoder
            .next()
            .map_err(|error| malformed(&error))
            .transpose()
    }

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
        let room_id = match topic_room(destination) {
            Some(Ok(room_id)) => room_id,
            Some(Err(())) | None => {
                let fatal = Fatal::new(
                    "UNKNOWN_DESTINATION",
                    format!("no such destination {destination}"),
                );
                return Command::Fatal(fatal.answering(receipt));
            }
        };
        let after = match frame.header("last-seq").map(last_seq).transpose() {
            Ok(after) => after,
            Err(()) => {
                let body = format!("last-seq must be an integer from 0 to {}", Seq::MAX);
                return Command::Fatal(Fatal::new("INVALID_MESSAGE", body).answering(receipt));
            }
        };
        let notices = match frame.header("notices") {
            None => destination.starts_with(NOTICES_BY_DEFAULT),
            Some("true") => true,
            Some("false") => false,
            Some(_) => {
                let body = "notices must be true or false";
                return Command::Fatal(Fatal::new("INVALID_MESSAGE", body).answering(receipt));
            }
        };
        Command::Subscribe(Subscription {
            id: id.to_owned(),
            destination: destination.to_owned(),
            room_id,
            after,
            notices,
            receipt,
        })
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

    /// Whether an id names the errors subscription (so no room subscription may take it).
    pub fn is_errors(&self, id: &str) -> bool {
        self.errors.as_deref() == Some(id)
    }

    /// Escapes a header value when the session's version has escapes.
    fn header<'a>(&self, value: &'a str) -> std::borrow::Cow<'a, str> {
        match self.version {
            Some("1.2") => escape(value),
            _ => value.into(),
        }
    }

    pub fn connected(&self, session: u64) -> ByteString {
        let version = self.version.unwrap_or("1.0");
        let heart_beat = format!("{HEART_BEAT},{HEART_BEAT}");
        let server = concat!("chat/", env!("CARGO_PKG_VERSION"));
        let session = session.to_string();
        let headers = [
            ("version", version),
            ("heart-beat", heart_beat.as_str()),
            ("server", server),
            ("session", session.as_str()),
        ];
        encode("CONNECTED", &headers, "").into()
    }

    /// The start of every MESSAGE to one subscription: the command and the headers that name
    /// the subscription. Made once per subscription; [`message_tail`] is the rest.
    pub fn message_head(&self, id: &str, destination: &str) -> ByteString {
        let id = self.header(id);
        let destination = self.header(destination);
        format!("MESSAGE\ndestination:{destination}\nsubscription:{id}\n").into()
    }

    /// A whole MESSAGE to one subscription, for the rare ones that are not room events.
    fn message(&self, id: &str, destination: &str, body: &str) -> ByteString {
        let head = self.message_head(id, destination);
        let tail = message_tail(&Uuid::new_v4().to_string(), None, body);
        format!("{head}{tail}").into()
    }

    pub fn receipt(&self, id: &str) -> ByteString {
        let id = self.header(id);
        encode("RECEIPT", &[("receipt-id", id.as_ref())], "").into()
    }

    /// A refused SEND: a MESSAGE on the errors subscription when the client made one (and the
    /// connection goes on), else None: it gets ERROR and the connection closes.
    pub fn refusal(&self, refusal: &Refusal) -> Option<ByteString> {
        let id = self.errors.as_deref()?;
        Some(self.message(id, ERRORS, &refusal.frame()))
    }

    /// The ERROR frame that ends the connection for a refused SEND.
    pub fn refusal_error(&self, refusal: &Refusal) -> ByteString {
        let body = refusal.frame();
        let fatal = Fatal::new(refusal.error.code(), body.to_string())
            .answering(refusal.echo.receipt.clone());
        self.error(&fatal)
    }

    pub fn error(&self, fatal: &Fatal) -> ByteString {
        let receipt = fatal.receipt.as_deref().map(|id| self.header(id));
        let length = fatal.body.len().to_string();
        let versions = VERSIONS.join(",");
        let mut headers = vec![("message", fatal.message)];
        if fatal.version_header {
            headers.push(("version", versions.as_str()));
        }
        if let Some(receipt) = &receipt {
            headers.push(("receipt-id", receipt.as_ref()));
        }
        let content_type = match fatal.body.starts_with('{') {
            true => "application/json",
            false => "text/plain",
        };
        headers.push(("content-type", content_type));
        headers.push(("content-length", length.as_str()));
        encode("ERROR", &headers, &fatal.body).into()
    }

    /// The ERROR before a reader too slow for its events is closed (1013).
    pub fn slow(&self) -> ByteString {
        let fatal = Fatal::new(
            "SLOW_CONSUMER",
            "too slow to read events; reconnect and SUBSCRIBE with last-seq",
        );
        self.error(&fatal)
    }

    /// The ERROR before a connection whose message asked for too many refusals is closed.
    pub fn flood(&self) -> ByteString {
        let fatal = Fatal::new(
            "TOO_MANY_ERRORS",
            "one message asked for too many refusals and receipts",
        );
        self.error(&fatal)
    }

    /// The ERROR before a WebSocket message over the size limit is answered with 1009.
    pub fn too_large(&self) -> ByteString {
        self.error(&malformed(&FrameError::TooLarge))
    }

    /// A heart-beat from the server: a bare EOL.
    pub fn heart_beat() -> ByteString {
        ByteString::from_static("\n")
    }
}

/// The rest of a MESSAGE after [`Stomp::message_head`], the same for every subscription and
/// every version (none of it needs escapes): the event's headers, a blank line, the body (the
/// `/ws/chat` JSON) and the NUL.
pub fn message_tail(message_id: &str, seq: Option<Seq>, body: &str) -> ByteString {
    let mut tail = String::with_capacity(body.len() + 128);
    tail.push_str("message-id:");
    tail.push_str(message_id);
    tail.push_str("\ncontent-type:application/json\ncontent-length:");
    tail.push_str(&body.len().to_string());
    tail.push('\n');
    if let Some(seq) = seq {
        tail.push_str("seq:");
        tail.push_str(&seq.to_string());
        tail.push('\n');
    }
    tail.push('\n');
    tail.push_str(body);
    tail.push('\0');
    tail.into()
}

/// The ERROR for bytes that are not STOMP, or a frame over the size limit.
fn malformed(error: &FrameError) -> Fatal {
    let message = match error {
        FrameError::TooLarge => "FRAME_TOO_LARGE",
        FrameError::Malformed(_) => "MALFORMED_FRAME",
    };
    Fatal::new(message, error.to_string())
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
fn token(frame: &Frame) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "3f2c5a8e-8d2b-4a63-9a43-3c0c8a1d2e4f";

    impl Stomp {
        /// What the bytes' frames ask, each read after the one before it took effect.
        fn commands(&mut self, bytes: &[u8], signed_as: Option<&Sender>) -> Vec<Command> {
            self.push(bytes);
            let mut commands = Vec::new();
            while let Some(decoded) = self.next_decoded() {
                match decoded {
                    Ok(Decoded::Frame(frame)) => commands.push(self.command(frame, signed_as)),
                    Ok(Decoded::HeartBeat) => {}
                    Err(fatal) => {
                        commands.push(Command::Fatal(fatal));
                        break;
                    }
                }
            }
            commands
        }
    }

    fn stomp_connected(version: &str) -> Stomp {
        let mut stomp = Stomp::new();
        let connect = format!("CONNECT\naccept-version:{version}\nheart-beat:5000,20000\n\n\0");
        let commands = stomp.commands(connect.as_bytes(), None);
        assert!(
            matches!(commands[..], [Command::Connected { .. }]),
            "{commands:?}"
        );
        stomp
    }

    #[test]
    fn the_newest_common_version_is_agreed_and_heart_beats_are_at_least_10_s() {
        let stomp = stomp_connected("1.1,1.0");
        assert_eq!(stomp.version, Some("1.1"));
        assert_eq!(stomp.expect_every, Some(Duration::from_secs(10)));
        assert_eq!(stomp.send_every, Some(Duration::from_secs(20)));
        let connected = stomp.connected(7);
        for header in [
            "version:1.1\n",
            "heart-beat:10000,10000\n",
            "server:chat/",
            "session:7\n",
        ] {
            assert!(connected.contains(header), "{connected:?}");
        }
        assert_eq!(stomp_connected("1.2,1.1,1.0").version, Some("1.2"));

        let mut old = Stomp::new();
        let commands = old.commands(b"CONNECT\n\n\0", None);
        assert!(matches!(commands[..], [Command::Connected { .. }]));
        assert_eq!(old.version, Some("1.0"), "no accept-version means 1.0");
    }

    #[test]
    fn no_common_version_is_an_error_naming_ours() {
        let mut stomp = Stomp::new();
        let commands = stomp.commands(b"CONNECT\naccept-version:2.0\n\n\0", None);
        let [Command::Fatal(fatal)] = &commands[..] else {
            panic!("{commands:?}")
        };
        let error = stomp.error(fatal);
        assert!(error.contains("version:1.2,1.1,1.0\n"), "{error:?}");
    }

    #[test]
    fn a_send_becomes_the_chat_frame_with_the_destinations_room_and_the_identitys_name() {
        let mut stomp = stomp_connected("1.2");
        let alice = Sender::parse("alice").unwrap();
        let send = format!(
            "SEND\ndestination:/app/rooms/{ROOM}\nreceipt:r-1\n\n{{\"type\":\"QUIT\",\"roomId\":\"nope\"}}\0"
        );
        let commands = stomp.commands(send.as_bytes(), Some(&alice));
        let [Command::Chat(frame, echo)] = &commands[..] else {
            panic!("{commands:?}")
        };
        assert_eq!(frame.room_id.to_string(), ROOM);
        assert_eq!(frame.sender, alice);
        assert_eq!(echo.receipt.as_deref(), Some("r-1"));

        let elsewhere = b"SEND\ndestination:/queue/x\n\n{}\0";
        let commands = stomp.commands(elsewhere, None);
        assert!(
            matches!(&commands[..], [Command::Refuse(refusal)] if refusal.error.code() == "INVALID_MESSAGE")
        );
    }

    #[test]
    fn subscribing_takes_room_topics_the_errors_queue_and_last_seq() {
        let mut stomp = stomp_connected("1.1");
        for topic in TOPICS {
            let subscribe =
                format!("SUBSCRIBE\nid:s\ndestination:{topic}{ROOM}\nlast-seq:41\n\n\0");
            let commands = stomp.commands(subscribe.as_bytes(), None);
            assert!(
                matches!(&commands[..], [Command::Subscribe(Subscription { after: Some(after), .. })] if after.get() == 41),
                "{commands:?}"
            );
        }
        let errors = b"SUBSCRIBE\nid:e\ndestination:/user/queue/errors\n\n\0";
        assert!(matches!(
            stomp.commands(errors, None)[..],
            [Command::Receipt(None)]
        ));
        assert!(stomp.is_errors("e"));
        for bad in ["/topic/other", "/topic/rooms/not-a-uuid"] {
            let subscribe = format!("SUBSCRIBE\nid:x\ndestination:{bad}\n\n\0");
            assert!(matches!(
                stomp.commands(subscribe.as_bytes(), None)[..],
                [Command::Fatal(_)]
            ));
        }
    }

    #[test]
    fn frames_before_connect_and_transactions_end_the_connection() {
        let mut stomp = Stomp::new();
        assert!(matches!(
            stomp.commands(b"SEND\ndestination:x\n\n\0", None)[..],
            [Command::Fatal(_)]
        ));
        let mut stomp = stomp_connected("1.2");
        assert!(matches!(
            stomp.commands(b"BEGIN\ntransaction:t\n\n\0", None)[..],
            [Command::Fatal(_)]
        ));
        assert!(matches!(
            stomp.commands(b"ACK\nid:1\nreceipt:r\n\n\0", None)[..],
            [Command::Receipt(Some(_))]
        ));
    }

    #[test]
    fn a_message_is_its_subscriptions_head_escaped_in_1_2_then_the_shared_tail() {
        let stomp = stomp_connected("1.2");
        let head = stomp.message_head("s:1", "/topic/rooms/x");
        let tail = message_tail("m", Some(Seq::new(4).unwrap()), "{}");
        assert_eq!(
            format!("{head}{tail}"),
            "MESSAGE\ndestination:/topic/rooms/x\nsubscription:s\\c1\nmessage-id:m\n\
             content-type:application/json\ncontent-length:2\nseq:4\n\n{}\0"
        );
        let old = stomp_connected("1.1");
        assert!(old.message_head("s:1", "d").contains("subscription:s:1\n"));
        assert!(!message_tail("m", None, "").contains("seq:"));
    }

    #[test]
    fn the_tail_counts_the_body_in_bytes() {
        let tail = message_tail("m", None, "안녕");
        assert!(tail.contains("content-length:6\n"), "{tail}");
    }

    #[test]
    fn credentials_come_from_authorization_passcode_or_token() {
        let frame = |header: &str| Frame {
            command: "CONNECT".into(),
            headers: vec![
                header
                    .split_once(':')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .unwrap(),
            ],
            body: Default::default(),
        };
        assert_eq!(
            token(&frame("Authorization:Bearer abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(token(&frame("passcode:def")).as_deref(), Some("def"));
        assert_eq!(token(&frame("token:ghi")).as_deref(), Some("ghi"));
        assert_eq!(token(&frame("login:x")), None);
    }
}
