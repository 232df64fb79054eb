//! What the client sends: each WebSocket message counted against the frame limit (pings and
//! pongs too, and a ping always answered), its frames read in order, each acted on once the
//! one before it took effect, or refused; and no message may get more than [`MAX_ANSWERS`]
//! bytes of answers.

use std::time::Instant;

use bytes::Bytes;
use bytestring::ByteString;

use super::{Dialect, Session};
use crate::ws::dialect::chat::{Echo, Refusal, WsError, parse};
use crate::ws::dialect::stomp::{Decoded, Fatal};
use crate::ws::transport::close::End;
use crate::ws::transport::sockjs;
use crate::ws::transport::websocket::{Broken, Received, Transport};

/// Most bytes of refusals and receipts one WebSocket message may get: the largest message
/// (64 KiB by default) of the frames that cost least to send gets this many without harm to
/// anyone, and one holding thousands of empty SockJS messages cannot make much more.
const MAX_ANSWERS: usize = 256 * 1024;

/// One message of the dialect, as it arrived.
enum Payload {
    Text(ByteString),
    Binary(Bytes),
}

/// A frame that arrived and waits for the session to act on it.
enum Pending {
    Chat(ByteString),
    Stomp(Result<Decoded, Fatal>),
}

impl Session {
    pub(super) fn on_frame(&mut self, frame: Option<Result<Received, Broken>>) -> Result<(), End> {
        self.timers.heartbeat.seen();
        match frame {
            None => Err(End::Gone),
            Some(Err(Broken::TooLarge)) => Err(End::TooLarge),
            Some(Err(Broken::NotUtf8)) => Err(End::InvalidText),
            Some(Err(Broken::Protocol)) => Err(End::Protocol),
            Some(Ok(message)) => {
                self.frame_read = Some(Instant::now());
                self.on_message(message)
            }
        }
    }

    /// A message's frames wait in line (a STOMP message or a SockJS batch may hold several,
    /// and what follows an ENTER waits for its outcome, as it would on `/ws/chat`); pings,
    /// pongs and the close are handled at once.
    fn on_message(&mut self, message: Received) -> Result<(), End> {
        if matches!(message, Received::Text(_) | Received::Binary(_)) {
            self.prepaid = Some(!self.limiter.admits());
            self.answered = 0;
        }
        match (message, self.transport) {
            (Received::Text(text), Transport::SockJs) => {
                let messages = sockjs::messages(&text).ok_or(End::Protocol)?;
                for message in messages {
                    self.take_payload(Payload::Text(message.into()))?;
                }
                Ok(())
            }
            (Received::Text(text), Transport::WebSocket) => self.take_payload(Payload::Text(text)),
            (Received::Binary(bytes), Transport::WebSocket) => {
                self.take_payload(Payload::Binary(bytes))
            }
            (Received::Binary(_), Transport::SockJs) => Err(End::Binary),
            // A ping counts like any frame, and is answered whatever the count: RFC 6455 wants
            // its pong as soon as practical, and a client waiting for one must not hang.
            (Received::Ping(payload), _) => {
                self.limiter.admits();
                self.socket.pong(payload);
                Ok(())
            }
            (Received::Pong, _) => {
                self.limiter.admits();
                Ok(())
            }
            (Received::Close(reason), _) => Err(End::ClientClosed(reason)),
        }
    }

    /// Queues one message of the dialect: a JSON frame, or the bytes of STOMP frames (a text
    /// or a binary message alike).
    fn take_payload(&mut self, payload: Payload) -> Result<(), End> {
        match (&mut self.dialect, payload) {
            (Dialect::Chat, Payload::Text(text)) => self.pending.push_back(text),
            (Dialect::Chat, Payload::Binary(_)) => return Err(End::Binary),
            (Dialect::Stomp(stomp), Payload::Text(text)) => stomp.push(text.as_bytes()),
            (Dialect::Stomp(stomp), Payload::Binary(bytes)) => stomp.push(&bytes),
        }
        Ok(())
    }

    pub(super) fn has_pending(&self) -> bool {
        match &self.dialect {
            Dialect::Chat => !self.pending.is_empty(),
            Dialect::Stomp(stomp) => stomp.unread(),
        }
    }

    fn next_pending(&mut self) -> Option<Pending> {
        match &mut self.dialect {
            Dialect::Chat => self.pending.pop_front().map(Pending::Chat),
            Dialect::Stomp(stomp) => stomp.next_decoded().map(Pending::Stomp),
        }
    }

    /// Counts a frame against the rate limit: true when it is over. The first frame of a
    /// message was counted with it.
    fn over_limit(&mut self) -> bool {
        self.prepaid
            .take()
            .unwrap_or_else(|| !self.limiter.admits())
    }

    /// Acts on waiting frames for as long as the session reads. Every frame counts against
    /// the rate limit before anything else is done with it: a limited one is still read for
    /// the ids its refusal echoes. (A STOMP heart-beat costs nothing of its own.)
    pub(super) fn act_on_pending(&mut self) -> Result<(), End> {
        while self.reading() {
            let Some(pending) = self.next_pending() else {
                return self.message_without_frames();
            };
            match pending {
                Pending::Chat(text) => {
                    let limited = self.over_limit();
                    self.on_text(&text, limited)?;
                }
                Pending::Stomp(Ok(Decoded::HeartBeat)) => {}
                Pending::Stomp(Ok(Decoded::Frame(frame))) => {
                    let limited = self.over_limit();
                    self.on_stomp_frame(frame, limited)?;
                }
                Pending::Stomp(Err(fatal)) => return self.fatal(&fatal),
            }
        }
        Ok(())
    }

    /// A message that completed no frame (a piece of a STOMP frame, SockJS's `[]`) was
    /// counted too; over the limit, it is refused: on `/ws/chat` with an ERROR, on STOMP
    /// (where the rest of a frame cannot be refused) with ERROR and the end.
    fn message_without_frames(&mut self) -> Result<(), End> {
        if self.prepaid.take() != Some(true) {
            return Ok(());
        }
        match self.dialect {
            Dialect::Chat => self.refuse(Refusal {
                error: WsError::RateLimited,
                echo: Echo::default(),
            }),
            Dialect::Stomp(_) => self.fatal(&Fatal::rate_limited()),
        }
    }

    fn on_text(&mut self, text: &str, limited: bool) -> Result<(), End> {
        let parsed = parse(text);
        let kind = parsed.as_ref().map_or("INVALID", |f| f.action.name());
        self.state.metrics.frame_in(kind);
        let refusal = match parsed {
            Ok(frame) if !limited => {
                let echo = Echo::from(&frame);
                return self.dispatch(frame, echo);
            }
            Ok(frame) => Refusal {
                error: WsError::RateLimited,
                echo: Echo::from(&frame),
            },
            Err(refusal) if limited => Refusal {
                error: WsError::RateLimited,
                ..refusal
            },
            Err(refusal) => refusal,
        };
        self.refuse(refusal)
    }

    /// Tells the client a frame was refused: an ERROR frame on `/ws/chat`; on STOMP, a
    /// MESSAGE on its errors subscription, or (without one) ERROR and the end.
    pub(super) fn refuse(&mut self, refusal: Refusal) -> Result<(), End> {
        self.state
            .metrics
            .ws_error(self.dialect.name(), refusal.error.code());
        let answer = match &self.dialect {
            Dialect::Chat => refusal.frame(),
            Dialect::Stomp(stomp) => match stomp.refusal(&refusal) {
                Some(message) => message,
                None => {
                    self.socket.text(stomp.refusal_error(&refusal));
                    return Err(End::StompError);
                }
            },
        };
        self.answer(answer)
    }

    /// Sends what a client frame gets back, within what one message may get.
    pub(super) fn answer(&mut self, frame: ByteString) -> Result<(), End> {
        self.answered += frame.len();
        if self.answered > MAX_ANSWERS {
            return Err(End::Flood);
        }
        self.socket.text(frame);
        Ok(())
    }
}
