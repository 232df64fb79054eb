//! STOMP 1.2 over WebSocket (`/ws/stomp`), for front ends written for Spring's STOMP chat
//! tutorials: frames decoded from the bytes ([`frame`]), what each asks of the session
//! ([`incoming`]: [`Stomp::command`]), and the frames the server sends ([`outgoing`]). The
//! session does the work, exactly as for `/ws/chat`: a `SEND` becomes the same `ClientFrame`, a
//! `SUBSCRIBE` a reader of the room.

pub mod frame;
mod incoming;
mod outgoing;

use std::time::Duration;

pub use self::frame::{Decoded, Frame};
use self::frame::{Decoder, FrameError};
pub use self::outgoing::message_tail;
use super::chat::{ClientFrame, Echo, Refusal};
use crate::domain::{RoomId, Seq};

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

    pub fn banned(room_id: RoomId, receipt: Option<String>) -> Self {
        Self::new("BANNED", format!("you are banned from room {room_id}")).answering(receipt)
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

    /// Whether an id names the errors subscription (so no room subscription may take it).
    pub fn is_errors(&self, id: &str) -> bool {
        self.errors.as_deref() == Some(id)
    }
}

/// The ERROR for bytes that are not STOMP, or a frame over the size limit.
fn malformed(error: &FrameError) -> Fatal {
    let message = match error {
        FrameError::TooLarge => "FRAME_TOO_LARGE",
        FrameError::Malformed(_) => "MALFORMED_FRAME",
    };
    Fatal::new(message, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::incoming::token;
    use super::*;
    use crate::domain::Sender;

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
