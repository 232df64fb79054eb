use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with millisecond precision: stored as epoch milliseconds, shown as RFC 3339
/// (`2026-11-21T09:30:00.123Z`), so what is stored and what is shown cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    fn rfc3339(self) -> String {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or(DateTime::UNIX_EPOCH)
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|instant| Self(instant.timestamp_millis()))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_is_shown_as_rfc3339_utc_with_milliseconds() {
        let t = Timestamp::from_millis(1_795_253_400_123);
        let shown = serde_json::to_string(&t).unwrap();
        assert_eq!(shown, "\"2026-11-21T09:30:00.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&shown).unwrap(), t);
    }
}
