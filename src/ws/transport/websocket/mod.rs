//! A WebSocket on its own TCP stream, once HTTP has handed it over. [`Incoming`] decodes frames
//! (RFC 6455, with actix-http's codec), joins a fragmented message up to the size limit and
//! checks that text is UTF-8; it holds no buffer while it waits for the client. [`Socket`]
//! encodes what the session sends into one buffer, writes it in one system call however many
//! frames wait, and lets the buffer go once it is written. Every write races shutdown and the
//! slow-consumer signal, so a client that stops reading can never pin its session; closing is
//! the one bounded exception, and it closes the TCP connection at once after the closing
//! handshake (the server closes first: RFC 6455 section 7.1.1).

use std::pin::Pin;
use std::time::Duration;

use actix_codec::Encoder;
use actix_http::ws::{Codec, Message};
use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

pub use actix_http::ws::CloseReason;

mod incoming;

use super::close::End;
use super::sockjs;

pub use self::incoming::{Broken, Incoming, Received};

/// What a write buffer starts with: room for a batch of chat frames without growing.
const WRITE_CHUNK: usize = 4096;
/// How long closing may take to write what is queued and the close frame: a client that reads
/// slowly (one closed for it) still gets everything, up to its close frame.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing then waits for the client's own close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How messages travel on the WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One message per WebSocket text frame.
    WebSocket,
    /// SockJS: the messages of one write go out as one `a[...]` frame.
    SockJs,
}

/// The writing half of a WebSocket.
pub struct Socket {
    write: OwnedWriteHalf,
    transport: Transport,
    buffer: BytesMut,
    /// SockJS messages waiting for the next write, as the inside of a JSON array.
    batch: String,
    codec: Codec,
    slow: CancellationToken,
    shutdown: CancellationToken,
    /// How long one flush may take: a client that stops reading is dropped after it.
    deadline: Duration,
}

impl Socket {
    /// `[slow, shutdown]`: the signals that stop a write (the session's queue overflowed, the
    /// service is shutting down).
    pub fn new(
        write: OwnedWriteHalf,
        transport: Transport,
        [slow, shutdown]: [CancellationToken; 2],
        deadline: Duration,
    ) -> Self {
        let mut socket = Self {
            write,
            transport,
            buffer: BytesMut::new(),
            batch: String::new(),
            codec: Codec::new(),
            slow,
            shutdown,
            deadline,
        };
        if transport == Transport::SockJs {
            socket.queue(Message::Text(ByteString::from_static(sockjs::OPEN)));
        }
        socket
    }

    /// Adds a message to what the next [`Socket::flush`] writes.
    fn queue(&mut self, message: Message) {
        if self.buffer.capacity() == 0 {
            self.buffer.reserve(WRITE_CHUNK);
        }
        // Encoding into memory cannot fail for a server's frames.
        let _ = self.codec.encode(message, &mut self.buffer);
    }

    /// Writes everything queued, in as few system calls as the socket allows. Stopped by
    /// shutdown, the slow-consumer signal or its deadline (a client that stops reading, in a
    /// quiet room too, would otherwise hold its session in this write for ever), it keeps
    /// what it has not written, so a close frame written after it still follows whole frames.
    /// Most flushes go out in one write at once: the deadline's timer is armed only when the
    /// socket makes one wait.
    pub async fn flush(&mut self) -> Result<(), End> {
        self.seal_batch();
        let mut deadline: Option<Pin<Box<Sleep>>> = None;
        while !self.buffer.is_empty() {
            match self.write.try_write(&self.buffer) {
                Ok(0) => return Err(End::Gone),
                Ok(written) => {
                    self.buffer.advance(written);
                    continue;
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(End::Gone),
            }
            let deadline =
                deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(self.deadline)));
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return Err(End::Shutdown),
                () = self.slow.cancelled() => return Err(End::Slow),
                () = deadline.as_mut() => return Err(End::Slow),
                ready = self.write.writable() => ready.map_err(|_| End::Gone)?,
            }
        }
        // Written out: an idle session holds no write buffer (its capacity() now counts only
        // what lies past the written bytes, so it cannot say how much is held).
        self.buffer = BytesMut::new();
        Ok(())
    }

    /// Sends one message of the session's protocol (a JSON frame, a STOMP frame).
    pub fn text(&mut self, frame: ByteString) {
        match self.transport {
            Transport::WebSocket => self.queue(Message::Text(frame)),
            Transport::SockJs => {
                self.batch
                    .push(if self.batch.is_empty() { '[' } else { ',' });
                // A string always serializes.
                let _ = serde_json::to_writer(BatchWriter(&mut self.batch), &*frame);
            }
        }
    }

    /// Sends one message of the session's protocol made of two parts (a STOMP MESSAGE's
    /// per-subscription head and the tail every subscription shares), without joining them
    /// into a new string first.
    pub fn text_parts(&mut self, head: &str, tail: &str) {
        match self.transport {
            Transport::WebSocket => {
                let length = head.len() + tail.len();
                self.buffer.reserve(length + MAX_HEADER);
                text_frame_header(&mut self.buffer, length);
                self.buffer.extend_from_slice(head.as_bytes());
                self.buffer.extend_from_slice(tail.as_bytes());
            }
            Transport::SockJs => {
                let mut joined = String::with_capacity(head.len() + tail.len());
                joined.push_str(head);
                joined.push_str(tail);
                self.text(joined.into());
            }
        }
    }

    /// SockJS's own heart-beat, on a SockJS connection.
    pub fn sockjs_heartbeat(&mut self) {
        if self.transport == Transport::SockJs {
            self.seal_batch();
            self.queue(Message::Text(ByteString::from_static(
                sockjs::HEARTBEAT_FRAME,
            )));
        }
    }

    /// Turns the SockJS messages gathered since the last write into one `a[...]` frame.
    fn seal_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut frame = String::with_capacity(self.batch.len() + 2);
        frame.push('a');
        frame.push_str(&self.batch);
        frame.push(']');
        self.batch = String::new();
        self.queue(Message::Text(frame.into()));
    }

    pub fn ping(&mut self) {
        self.queue(Message::Ping(Bytes::new()));
    }

    pub fn pong(&mut self, payload: Bytes) {
        self.queue(Message::Pong(payload));
    }

    /// Sends what is still queued and the close frame and, given the reading half, reads
    /// until the client answers with its own (the closing handshake); then closes the TCP
    /// connection. Bounded: a client that never reads costs at most [`CLOSE_WRITE_TIMEOUT`],
    /// one that never answers [`CLOSE_TIMEOUT`] more.
    pub async fn close(mut self, reason: CloseReason, answer: Option<&mut Incoming>) {
        self.seal_batch();
        if self.transport == Transport::SockJs {
            let text = reason.description.as_deref().unwrap_or_default();
            let frame = sockjs::close_frame(u16::from(reason.code), text);
            self.queue(Message::Text(frame.into()));
        }
        self.queue(Message::Close(Some(reason)));
        let written = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, self.write.write_all(&self.buffer));
        if matches!(written.await, Ok(Ok(())))
            && let Some(incoming) = answer
        {
            closing_handshake(incoming).await;
        }
        let _ = self.write.shutdown().await;
    }
}

/// Waits, at most [`CLOSE_TIMEOUT`], for the client's close frame.
async fn closing_handshake(incoming: &mut Incoming) {
    let answered = async {
        while let Some(Ok(received)) = incoming.next().await {
            if let Received::Close(_) = received {
                return;
            }
        }
    };
    if tokio::time::timeout(CLOSE_TIMEOUT, answered).await.is_err() {
        tracing::debug!("the client did not complete the closing handshake in time");
    }
}

/// The longest header of a frame the server sends (unmasked, 64-bit length).
const MAX_HEADER: usize = 10;

/// The header of an unfragmented, unmasked text frame of `length` bytes (RFC 6455 section
/// 5.2), as actix-http's codec writes it for a server.
fn text_frame_header(buffer: &mut BytesMut, length: usize) {
    use bytes::BufMut;

    const FIN_TEXT: u8 = 0x81;
    buffer.put_u8(FIN_TEXT);
    match u16::try_from(length) {
        Ok(short) if short < 126 => buffer.put_u8(short as u8),
        Ok(medium) => {
            buffer.put_u8(126);
            buffer.put_u16(medium);
        }
        Err(_) => {
            buffer.put_u8(127);
            buffer.put_u64(length as u64);
        }
    }
}

/// Lets serde_json write a string's JSON into a `String` (its output is UTF-8).
struct BatchWriter<'a>(&'a mut String);

impl std::io::Write for BatchWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(bytes).map_err(std::io::Error::other)?;
        self.0.push_str(text);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_written_text_frame_is_what_the_codec_writes() {
        for length in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = "x".repeat(length);
            let mut by_codec = BytesMut::new();
            Codec::new()
                .encode(Message::Text(payload.clone().into()), &mut by_codec)
                .unwrap();

            let mut by_hand = BytesMut::new();
            text_frame_header(&mut by_hand, length);
            by_hand.extend_from_slice(payload.as_bytes());

            assert_eq!(by_hand, by_codec, "length {length}");
        }
    }
}
