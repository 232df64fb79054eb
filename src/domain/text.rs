use super::DomainError;

/// Checks a length in characters (Unicode scalar values, not bytes).
pub(super) fn bounded(field: &'static str, value: &str, max: usize) -> Result<String, DomainError> {
    if value.is_empty() {
        return Err(DomainError::Empty { field });
    }
    if value.chars().count() > max {
        return Err(DomainError::TooLong { field, max });
    }
    Ok(value.to_owned())
}

/// The name a member talks under: trimmed, 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender(String);

impl Sender {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        bounded("sender", raw.trim(), Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A TALK's text: 1 to 4,000 characters, kept exactly as sent (line breaks included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub const MAX_CHARS: usize = 4000;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        bounded("message", raw, Self::MAX_CHARS).map(Self)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The client's own id for a frame, echoed on the event it causes and on any refusal of it:
/// 1 to 128 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        bounded("clientMsgId", raw, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A reaction: an emoji sequence or a `:shortcode:`, 1 to 32 characters, kept exactly as
/// sent (no whitespace or control characters: what would look empty or break a line).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Emoji(String);

impl Emoji {
    pub const MAX_CHARS: usize = 32;
    /// At most this many different emoji on one TALK.
    pub const MAX_PER_TALK: usize = 20;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let emoji = bounded("emoji", raw, Self::MAX_CHARS)?;
        if emoji.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::Spaced { field: "emoji" });
        }
        Ok(Self(emoji))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_is_trimmed_and_bounded_to_64_characters() {
        assert_eq!(Sender::parse(" alice ").unwrap().as_str(), "alice");
        assert!(Sender::parse(&"a".repeat(64)).is_ok());
        assert_eq!(
            Sender::parse(&"a".repeat(65)),
            Err(DomainError::TooLong {
                field: "sender",
                max: 64
            })
        );
        assert_eq!(
            Sender::parse("\t"),
            Err(DomainError::Empty { field: "sender" })
        );
    }

    #[test]
    fn a_message_keeps_its_whitespace_and_counts_characters_not_bytes() {
        assert_eq!(
            MessageText::parse(" hi\nthere ").unwrap().into_string(),
            " hi\nthere "
        );
        assert!(MessageText::parse(&"한".repeat(4000)).is_ok());
        assert_eq!(
            MessageText::parse(&"a".repeat(4001)),
            Err(DomainError::TooLong {
                field: "message",
                max: 4000
            })
        );
        assert_eq!(
            MessageText::parse(""),
            Err(DomainError::Empty { field: "message" })
        );
    }

    #[test]
    fn an_emoji_is_1_to_32_characters_without_spaces() {
        assert_eq!(Emoji::parse("👍").unwrap().as_str(), "👍");
        assert!(Emoji::parse("👨‍👩‍👧‍👦").is_ok(), "a joined sequence is one emoji");
        assert!(Emoji::parse(":tada:").is_ok());
        assert!(Emoji::parse(&"a".repeat(32)).is_ok());
        assert_eq!(
            Emoji::parse(&"a".repeat(33)),
            Err(DomainError::TooLong {
                field: "emoji",
                max: 32
            })
        );
        assert_eq!(Emoji::parse(""), Err(DomainError::Empty { field: "emoji" }));
        for spaced in [" ", "👍 ", "a\nb", "\u{0}"] {
            assert_eq!(
                Emoji::parse(spaced),
                Err(DomainError::Spaced { field: "emoji" }),
                "{spaced:?}"
            );
        }
    }
}
