//! STOMP frames on the wire (1.0, 1.1 and 1.2): a tolerant decoder (the server's encoder is
//! `outgoing.rs`).
//!
//! The decoder takes bytes as they come, across WebSocket messages (legacy stomp.js splits a
//! frame at 16 KiB; several frames may share a message), and yields frames and heart-beats (a
//! bare EOL). It accepts what both JS clients send (no `host` is asked for here: that is the
//! session's business), CRLF or LF line ends, `content-length` bodies holding NULs, and caps a
//! frame at [`MAX_FRAME`] bytes. Header escapes are decoded only once a 1.2 session asks for
//! them (CONNECT itself is never escaped). When headers repeat, the first wins.

use bytes::{Buf, Bytes, BytesMut};

/// The largest frame, headers and body together: the `/ws/chat` frame limit.
pub const MAX_FRAME: usize = 64 * 1024;

/// A frame as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Frame {
    /// A header's value; when it repeats, the first.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// What the client sent next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Frame(Frame),
    /// A bare EOL: the client's heart-beat.
    HeartBeat,
}

/// Why the bytes are not STOMP; the connection cannot go on after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame may hold at most {MAX_FRAME} bytes")]
    TooLarge,
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

/// Frames out of a stream of bytes. Linear in what arrives, however it is split: the frame
/// being read keeps what is parsed of it (its command, its headers) and where the scan
/// stands, so a byte is looked at once, not once per WebSocket message.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: BytesMut,
    escapes: bool,
    /// The frame whose start is at the front of the buffer, as far as it has been scanned.
    partial: Option<Partial>,
    /// Bytes arrived that [`Decoder::next`] has not looked at since.
    unread: bool,
}

/// What is known of the frame being read.
#[derive(Debug, Default)]
struct Partial {
    command: Option<String>,
    headers: Vec<(String, String)>,
    /// Where the line being read starts.
    line_start: usize,
    /// Where the body starts, once the blank line that ends the headers has come.
    body_start: Option<usize>,
    /// How far the buffer has been searched for the next LF or, in a body without
    /// `content-length`, its NUL.
    searched: usize,
}

impl Decoder {
    /// Decodes header escapes from now on (a 1.2 session, after CONNECT).
    pub fn decode_escapes(&mut self) {
        self.escapes = true;
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        self.unread = true;
    }

    /// Whether bytes came since [`Decoder::next`] last found no whole frame.
    pub fn unread(&self) -> bool {
        self.unread
    }

    /// The next frame or heart-beat, if the buffer holds a whole one.
    pub fn next(&mut self) -> Result<Option<Decoded>, FrameError> {
        let decoded = self.decode()?;
        if decoded.is_none() {
            self.unread = false;
        }
        Ok(decoded)
    }

    fn decode(&mut self) -> Result<Option<Decoded>, FrameError> {
        if self.partial.is_none() {
            match self.buffer.first() {
                None => return Ok(None),
                Some(b'\n') => return Ok(Some(self.heart_beat(1))),
                Some(b'\r') => return self.carriage_return(),
                Some(_) => self.partial = Some(Partial::default()),
            }
        }
        let Some(body_start) = self.scan_head()? else {
            return self.incomplete();
        };
        let Some(end) = self.body_end(body_start)? else {
            return self.incomplete();
        };
        if end >= MAX_FRAME {
            return Err(FrameError::TooLarge);
        }
        let partial = self.partial.take().unwrap_or_default();
        let frame = Frame {
            command: partial.command.unwrap_or_default(),
            headers: partial.headers,
            body: Bytes::copy_from_slice(&self.buffer[body_start..end]),
        };
        self.consume(end + 1);
        Ok(Some(Decoded::Frame(frame)))
    }

    /// A bare EOL of `length` bytes.
    fn heart_beat(&mut self, length: usize) -> Decoded {
        self.consume(length);
        Decoded::HeartBeat
    }

    /// Drops what was decoded; a buffer far larger than what it still holds is let go, so a
    /// burst does not leave its peak allocation behind.
    fn consume(&mut self, length: usize) {
        self.buffer.advance(length);
        if self.buffer.is_empty() {
            self.buffer = BytesMut::new();
        } else if self.buffer.capacity() > 4 * self.buffer.len().max(1024) {
            self.buffer = BytesMut::from(&self.buffer[..]);
        }
    }

    /// A CR starts a CRLF heart-beat, or nothing valid.
    fn carriage_return(&mut self) -> Result<Option<Decoded>, FrameError> {
        match self.buffer.get(1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some(self.heart_beat(2))),
            Some(_) => Err(FrameError::Malformed("a CR not followed by LF")),
        }
    }

    /// Nothing whole yet: fine while what is buffered may still become a frame.
    fn incomplete(&self) -> Result<Option<Decoded>, FrameError> {
        if self.buffer.len() > MAX_FRAME {
            return Err(FrameError::TooLarge);
        }
        Ok(None)
    }

    /// Reads the lines of the frame's head that arrived since the last call; the offset where
    /// its body starts, once the blank line that ends the head is buffered.
    fn scan_head(&mut self) -> Result<Option<usize>, FrameError> {
        let escapes = self.escapes;
        let Some(partial) = self.partial.as_mut() else {
            return Ok(None);
        };
        while partial.body_start.is_none() {
            let from = partial.searched;
            let Some(lf) = self.buffer[from..].iter().position(|b| *b == b'\n') else {
                partial.searched = self.buffer.len();
                return Ok(None);
            };
            let end = from + lf;
            let line = &self.buffer[partial.line_start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            partial.line_start = end + 1;
            partial.searched = end + 1;
            if partial.command.is_none() {
                partial.command = Some(command(line)?);
            } else if line.is_empty() {
                partial.body_start = Some(end + 1);
            } else {
                partial.headers.push(header(line, escapes)?);
            }
        }
        Ok(partial.body_start)
    }

    /// The offset of the NUL that ends the body, once it is buffered.
    fn body_end(&mut self, start: usize) -> Result<Option<usize>, FrameError> {
        let Some(partial) = self.partial.as_mut() else {
            return Ok(None);
        };
        let length = partial
            .headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .map(|(_, value)| value.as_str());
        let Some(length) = length else {
            let from = partial.searched.max(start);
            let Some(nul) = self.buffer[from..].iter().position(|b| *b == 0) else {
                partial.searched = self.buffer.len();
                return Ok(None);
            };
            return Ok(Some(from + nul));
        };
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| FrameError::Malformed("content-length is not a number"))?;
        let end = start
            .checked_add(length)
            .filter(|end| *end < MAX_FRAME)
            .ok_or(FrameError::TooLarge)?;
        match self.buffer.get(end) {
            None => Ok(None),
            Some(0) => Ok(Some(end)),
            Some(_) => Err(FrameError::Malformed("no NUL after content-length bytes")),
        }
    }
}

/// A frame's first line.
fn command(line: &[u8]) -> Result<String, FrameError> {
    let command = text(line)?;
    if command.is_empty() || !command.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(FrameError::Malformed("a command is letters only"));
    }
    Ok(command.to_owned())
}

fn header(line: &[u8], escapes: bool) -> Result<(String, String), FrameError> {
    let colon = line
        .iter()
        .position(|b| *b == b':')
        .ok_or(FrameError::Malformed("a header line without a colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if escapes {
        return Ok((unescape(name)?, unescape(value)?));
    }
    Ok((text(name)?.to_owned(), text(value)?.to_owned()))
}

fn text(bytes: &[u8]) -> Result<&str, FrameError> {
    std::str::from_utf8(bytes).map_err(|_| FrameError::Malformed("a header is not UTF-8"))
}

/// Decodes STOMP 1.2's header escapes; any other escape is an error.
fn unescape(bytes: &[u8]) -> Result<String, FrameError> {
    let raw = text(bytes)?;
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('r') => '\r',
            Some('n') => '\n',
            Some('c') => ':',
            Some('\\') => '\\',
            _ => return Err(FrameError::Malformed("an undefined header escape")),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ws::dialect::stomp::outgoing::{encode, escape};

    fn decode_all(decoder: &mut Decoder) -> Result<Vec<Decoded>, FrameError> {
        let mut out = Vec::new();
        while let Some(decoded) = decoder.next()? {
            out.push(decoded);
        }
        Ok(out)
    }

    fn frames(bytes: &[u8]) -> Result<Vec<Decoded>, FrameError> {
        let mut decoder = Decoder::default();
        decoder.push(bytes);
        decode_all(&mut decoder)
    }

    fn frame(command: &str, headers: &[(&str, &str)], body: &[u8]) -> Decoded {
        Decoded::Frame(Frame {
            command: command.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Bytes::copy_from_slice(body),
        })
    }

    #[test]
    fn a_connect_without_host_and_a_heart_beat_decode() {
        let connect = b"CONNECT\naccept-version:1.1,1.0\nheart-beat:10000,10000\n\n\0\n";
        assert_eq!(
            frames(connect),
            Ok(vec![
                frame(
                    "CONNECT",
                    &[("accept-version", "1.1,1.0"), ("heart-beat", "10000,10000")],
                    b""
                ),
                Decoded::HeartBeat
            ])
        );
    }

    #[test]
    fn crlf_lines_several_frames_and_a_content_length_body_with_nuls_decode() {
        let bytes = b"SEND\r\ndestination:/pub/chat/message\r\ncontent-length:3\r\n\r\na\0b\0\r\nSEND\ndestination:x\n\nhi\0";
        assert_eq!(
            frames(bytes),
            Ok(vec![
                frame(
                    "SEND",
                    &[
                        ("destination", "/pub/chat/message"),
                        ("content-length", "3")
                    ],
                    b"a\0b"
                ),
                Decoded::HeartBeat,
                frame("SEND", &[("destination", "x")], b"hi"),
            ])
        );
    }

    #[test]
    fn a_repeated_header_keeps_its_first_value() {
        let Ok(decoded) = frames(b"SEND\nfoo:1\nfoo:2\n\n\0") else {
            panic!("decodes")
        };
        let Decoded::Frame(frame) = &decoded[0] else {
            panic!("a frame")
        };
        assert_eq!(frame.header("foo"), Some("1"));
    }

    #[test]
    fn escapes_are_decoded_only_when_asked() {
        let bytes = b"SEND\nid:a\\cb\\\\c\\nd\n\n\0";
        let Ok(plain) = frames(bytes) else { panic!() };
        assert_eq!(plain[0], frame("SEND", &[("id", "a\\cb\\\\c\\nd")], b""));
        let mut decoder = Decoder::default();
        decoder.decode_escapes();
        decoder.push(bytes);
        assert_eq!(
            decode_all(&mut decoder),
            Ok(vec![frame("SEND", &[("id", "a:b\\c\nd")], b"")])
        );
        let mut strict = Decoder::default();
        strict.decode_escapes();
        strict.push(b"SEND\nid:\\t\n\n\0");
        assert!(matches!(
            decode_all(&mut strict),
            Err(FrameError::Malformed(_))
        ));
        assert_eq!(escape("a:b\\c\nd\r"), "a\\cb\\\\c\\nd\\r");
    }

    #[test]
    fn what_cannot_be_a_frame_is_refused() {
        for bytes in [
            &b"SEND\nno colon here\n\n\0"[..],
            b"SE ND\n\n\0",
            b"\rX",
            b"SEND\ncontent-length:x\n\n\0",
            b"SEND\ncontent-length:1\n\nab\0",
        ] {
            assert!(
                matches!(frames(bytes), Err(FrameError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn a_frame_over_64_kib_is_too_large_even_before_it_ends() {
        let mut huge = b"SEND\n\n".to_vec();
        huge.extend(std::iter::repeat_n(b'x', MAX_FRAME));
        assert_eq!(frames(&huge), Err(FrameError::TooLarge));
        let declared = format!("SEND\ncontent-length:{}\n\n", MAX_FRAME);
        assert_eq!(frames(declared.as_bytes()), Err(FrameError::TooLarge));
        let fits = format!("SEND\n\n{}\0", "x".repeat(MAX_FRAME - 7));
        assert!(frames(fits.as_bytes()).is_ok());
        let whole = format!("SEND\n\n{}\0", "x".repeat(MAX_FRAME - 6));
        assert_eq!(
            frames(whole.as_bytes()),
            Err(FrameError::TooLarge),
            "arriving whole"
        );
    }

    #[test]
    fn a_head_dripped_a_line_at_a_time_is_read_once_and_its_buffer_let_go() {
        let mut decoder = Decoder::default();
        decoder.push(b"SEND\n");
        for _ in 0..20_000 {
            decoder.push(b"a:\n");
            assert_eq!(decoder.next(), Ok(None));
            assert!(!decoder.unread(), "what came was read");
        }
        let partial = decoder.partial.as_ref().expect("a frame being read");
        assert_eq!(partial.headers.len(), 20_000, "each line parsed once");
        assert_eq!(
            partial.searched,
            decoder.buffer.len(),
            "nothing is searched twice"
        );
        decoder.push(b"\n\0");
        let Ok(Some(Decoded::Frame(frame))) = decoder.next() else {
            panic!("the frame")
        };
        assert_eq!(
            (frame.command.as_str(), frame.headers.len()),
            ("SEND", 20_000)
        );
        assert_eq!(
            decoder.buffer.capacity(),
            0,
            "an empty buffer holds nothing"
        );

        let mut big = b"SEND\n\n".to_vec();
        big.extend(std::iter::repeat_n(b'y', 60_000));
        big.extend(b"\0SEND\n");
        let mut decoder = Decoder::default();
        decoder.push(&big);
        assert!(matches!(decoder.next(), Ok(Some(Decoded::Frame(_)))));
        assert_eq!(decoder.next(), Ok(None));
        assert!(
            decoder.buffer.capacity() < 4096,
            "the rest of a burst keeps no peak allocation: {}",
            decoder.buffer.capacity()
        );
    }

    #[test]
    fn a_frame_is_encoded_with_its_headers_a_blank_line_and_a_nul() {
        let text = encode("RECEIPT", &[("receipt-id", "r-1")], "");
        assert_eq!(text, "RECEIPT\nreceipt-id:r-1\n\n\0");
        assert_eq!(
            frames(text.as_bytes()),
            Ok(vec![frame("RECEIPT", &[("receipt-id", "r-1")], b"")])
        );
    }

    /// A frame a client may send, written out with LF or CRLF line ends, with or without a
    /// `content-length` (then the body may hold NULs), and with heart-beats after it.
    fn wire_frame() -> impl Strategy<Value = (Decoded, Vec<u8>)> {
        let name = "[a-z][a-z-]{0,12}";
        let value = "[ -9;-~]{0,20}";
        (
            prop::sample::select(vec![
                "SEND",
                "SUBSCRIBE",
                "UNSUBSCRIBE",
                "CONNECT",
                "ACK",
                "DISCONNECT",
            ]),
            prop::collection::vec((name, value), 0..5),
            prop::collection::vec(any::<u8>(), 0..300),
            any::<bool>(),
            any::<bool>(),
            0usize..3,
        )
            .prop_map(|(command, headers, body, crlf, sized, beats)| {
                let headers: Vec<(String, String)> = headers
                    .into_iter()
                    .filter(|(name, _)| name != "content-length")
                    .collect();
                let body: Vec<u8> = match sized {
                    true => body,
                    false => body.into_iter().filter(|b| *b != 0).collect(),
                };
                let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
                let mut headers = headers;
                if sized {
                    headers.insert(0, ("content-length".into(), body.len().to_string()));
                }
                let mut wire = command.as_bytes().to_vec();
                wire.extend_from_slice(eol);
                for (name, value) in &headers {
                    wire.extend_from_slice(format!("{name}:{value}").as_bytes());
                    wire.extend_from_slice(eol);
                }
                wire.extend_from_slice(eol);
                wire.extend_from_slice(&body);
                wire.push(0);
                let decoded = Decoded::Frame(Frame {
                    command: command.into(),
                    headers,
                    body: Bytes::from(body),
                });
                for _ in 0..beats {
                    wire.extend_from_slice(eol);
                }
                (decoded, wire)
            })
    }

    proptest! {
        #[test]
        fn any_split_of_a_valid_stream_decodes_to_the_same_frames(
            written in prop::collection::vec(wire_frame(), 1..6),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let expected: Vec<Decoded> = written.iter().map(|(decoded, _)| decoded.clone()).collect();
            let stream: Vec<u8> = written.into_iter().flat_map(|(_, wire)| wire).collect();
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut decoder = Decoder::default();
            let mut decoded = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                decoder.push(&stream[at..cut]);
                at = cut;
                decoded.extend(decode_all(&mut decoder).expect("a valid stream"));
            }
            let frames: Vec<Decoded> = decoded
                .into_iter()
                .filter(|decoded| *decoded != Decoded::HeartBeat)
                .collect();
            prop_assert_eq!(frames, expected);
        }

        #[test]
        fn no_input_makes_the_decoder_panic(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..10),
            escapes in any::<bool>(),
        ) {
            let mut decoder = Decoder::default();
            if escapes {
                decoder.decode_escapes();
            }
            for chunk in chunks {
                decoder.push(&chunk);
                if decode_all(&mut decoder).is_err() {
                    break;
                }
            }
        }
    }
}
