use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A position in a room's history: 0 before its first event, then 1, 2, … up to `i64::MAX`,
/// the largest value SQLite and PostgreSQL store. Values outside that range cannot be built,
/// and the only arithmetic is checked or saturating, so no client's number can overflow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Seq(i64);

impl Seq {
    pub const ZERO: Self = Self(0);
    pub const MAX: Self = Self(i64::MAX);

    /// The seq stored as `raw`, if it is in range.
    pub fn new(raw: i64) -> Option<Self> {
        (raw >= 0).then_some(Self(raw))
    }

    /// A seq as a client sends it (JSON has no sign for us to trust), if it is in range.
    pub fn from_wire(raw: u64) -> Option<Self> {
        i64::try_from(raw).ok().map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The seq after this one, unless this is the last there can be.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }

    /// The seq before this one; 0 stays 0.
    pub fn prev(self) -> Self {
        Self(self.0.saturating_sub(1).max(0))
    }

    /// `count` seqs further on, capped at the last there can be.
    pub fn saturating_add(self, count: u32) -> Self {
        Self(self.0.saturating_add(i64::from(count)))
    }
}

impl<'de> Deserialize<'de> for Seq {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = i64::deserialize(deserializer)?;
        Self::new(raw).ok_or_else(|| serde::de::Error::custom(format!("seq {raw} is negative")))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seq_is_0_to_i64_max() {
        assert_eq!(Seq::new(-1), None);
        assert_eq!(Seq::new(0), Some(Seq::ZERO));
        assert_eq!(Seq::from_wire(i64::MAX as u64), Some(Seq::MAX));
        assert_eq!(Seq::from_wire(i64::MAX as u64 + 1), None);
        assert_eq!(Seq::from_wire(u64::MAX), None);
    }

    #[test]
    fn arithmetic_at_the_ends_neither_overflows_nor_wraps() {
        assert_eq!(Seq::MAX.next(), None);
        assert_eq!(Seq::ZERO.next(), Seq::new(1));
        assert_eq!(Seq::ZERO.prev(), Seq::ZERO);
        assert_eq!(Seq::MAX.saturating_add(u32::MAX), Seq::MAX);
    }

    #[test]
    fn a_seq_serializes_as_a_plain_integer_and_reads_back_only_in_range() {
        assert_eq!(
            serde_json::to_string(&Seq::MAX).unwrap(),
            "9223372036854775807"
        );
        assert_eq!(serde_json::from_str::<Seq>("42").unwrap(), Seq(42));
        assert!(serde_json::from_str::<Seq>("-1").is_err());
    }
}
