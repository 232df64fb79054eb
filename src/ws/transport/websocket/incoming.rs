//! The reading half of a WebSocket: frames decoded, fragments joined up to the size limit,
//! text checked to be UTF-8, and no buffer held while it waits for the client.

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use tokio::net::tcp::OwnedReadHalf;

use super::CloseReason;

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// A message from the client.
#[derive(Debug)]
pub enum Received {
    Text(ByteString),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    Close(Option<CloseReason>),
}

/// Why what the client sent cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// A frame or a joined message over the size limit.
    TooLarge,
    /// A text message that is not UTF-8.
    NotUtf8,
    /// Anything else RFC 6455 forbids (unmasked frames, a continuation out of place...).
    Protocol,
}

/// A fragmented message being joined.
struct Partial {
    text: bool,
    bytes: BytesMut,
}

/// The reading half of a WebSocket.
pub struct Incoming {
    read: OwnedReadHalf,
    buffer: BytesMut,
    codec: Codec,
    partial: Option<Partial>,
    max_size: usize,
}

impl Incoming {
    /// `leftover`: what HTTP read past the upgrade request (a client may send at once).
    pub fn new(read: OwnedReadHalf, leftover: BytesMut, max_size: usize) -> Self {
        Self {
            read,
            // Only what was read: HTTP's 8 KiB read buffer is not kept by a client that waits.
            buffer: BytesMut::from(&leftover[..]),
            codec: Codec::new().max_size(max_size),
            partial: None,
            max_size,
        }
    }

    /// The next message; None once the client has gone (the connection closed or failed).
    /// Cancel-safe: what was read stays in the buffer.
    pub async fn next(&mut self) -> Option<Result<Received, Broken>> {
        loop {
            if let Some(received) = self.decode() {
                return Some(received);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// Reads what the socket has, once it has something; false once the client has gone.
    /// While it waits, an empty buffer holds no memory.
    async fn fill(&mut self) -> bool {
        loop {
            if self.read.readable().await.is_err() {
                return false;
            }
            self.buffer.reserve(READ_CHUNK);
            match self.read.try_read_buf(&mut self.buffer) {
                Ok(0) => return false,
                Ok(_) => return true,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return false,
            }
        }
    }

    /// The next whole message in the buffer, if there is one.
    fn decode(&mut self) -> Option<Result<Received, Broken>> {
        loop {
            let frame = match self.codec.decode(&mut self.buffer) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    if self.buffer.is_empty() {
                        self.buffer = BytesMut::new();
                    }
                    return None;
                }
                Err(ProtocolError::Overflow) => return Some(Err(Broken::TooLarge)),
                Err(_) => return Some(Err(Broken::Protocol)),
            };
            if let Some(received) = self.take(frame) {
                return Some(received);
            }
        }
    }

    /// What a frame makes of the message being read: a whole message, or nothing yet.
    fn take(&mut self, frame: Frame) -> Option<Result<Received, Broken>> {
        let whole = match frame {
            Frame::Text(_) | Frame::Binary(_) if self.partial.is_some() => {
                return Some(Err(Broken::Protocol));
            }
            Frame::Text(bytes) => text(bytes),
            Frame::Binary(bytes) => Ok(Received::Binary(bytes)),
            Frame::Continuation(item) => return self.join(item),
            Frame::Ping(bytes) => Ok(Received::Ping(bytes)),
            Frame::Pong(_) => Ok(Received::Pong),
            Frame::Close(reason) => Ok(Received::Close(reason)),
        };
        Some(whole)
    }

    /// Adds a fragment to the message being joined; the last one completes it.
    /// Starts a fragmented message with its first fragment.
    fn begin(&mut self, text: bool, first: Bytes) -> Bytes {
        self.partial = Some(Partial {
            text,
            bytes: BytesMut::new(),
        });
        first
    }

    fn join(&mut self, item: Item) -> Option<Result<Received, Broken>> {
        let (bytes, last) = match item {
            Item::FirstText(_) | Item::FirstBinary(_) if self.partial.is_some() => {
                return Some(Err(Broken::Protocol));
            }
            Item::FirstText(bytes) => (self.begin(true, bytes), false),
            Item::FirstBinary(bytes) => (self.begin(false, bytes), false),
            Item::Continue(bytes) => (bytes, false),
            Item::Last(bytes) => (bytes, true),
        };
        let Some(partial) = self.partial.as_mut() else {
            return Some(Err(Broken::Protocol));
        };
        if partial.bytes.len() + bytes.len() > self.max_size {
            return Some(Err(Broken::TooLarge));
        }
        partial.bytes.extend_from_slice(&bytes);
        if !last {
            return None;
        }
        let Partial {
            text: is_text,
            bytes,
        } = self.partial.take()?;
        Some(match is_text {
            true => text(bytes.freeze()),
            false => Ok(Received::Binary(bytes.freeze())),
        })
    }
}

fn text(bytes: Bytes) -> Result<Received, Broken> {
    ByteString::try_from(bytes)
        .map(Received::Text)
        .map_err(|_| Broken::NotUtf8)
}
