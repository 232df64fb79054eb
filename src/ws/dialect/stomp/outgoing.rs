//! The frames the server sends: CONNECTED, MESSAGE (a subscription's head, then the tail the
//! event's readers share), RECEIPT and ERROR, escaped as the session's version wants.

use bytestring::ByteString;
use uuid::Uuid;

use super::{ERRORS, Fatal, FrameError, HEART_BEAT, Stomp, VERSIONS, malformed};
use crate::domain::Seq;
use crate::ws::dialect::chat::Refusal;

impl Stomp {
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

/// Escapes a header value for a 1.2 session.
pub(super) fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '\r', '\n', ':']) {
        return value.into();
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            ':' => out.push_str("\\c"),
            c => out.push(c),
        }
    }
    out.into()
}

/// A frame the server sends, as text: its command, headers (escaped as the session's version
/// needs, before this call) and body, then NUL.
pub(super) fn encode(command: &str, headers: &[(&str, &str)], body: &str) -> String {
    let size = command.len()
        + body.len()
        + 2
        + headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>();
    let mut out = String::with_capacity(size + 1);
    out.push_str(command);
    out.push('\n');
    for (name, value) in headers {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(body);
    out.push('\0');
    out
}
