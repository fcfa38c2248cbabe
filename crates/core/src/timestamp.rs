//! A UTC point in time with millisecond precision, written as RFC 3339.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Clock, ParseError};

/// Milliseconds since the Unix epoch, UTC.
///
/// Its text and serde form is RFC 3339 in UTC with milliseconds
/// (`2026-11-22T10:30:00.000Z`). Parsing and deserializing also accept a
/// plain integer of milliseconds since the epoch, and RFC 3339 with fewer or
/// more fractional digits (extra precision is truncated to milliseconds).
///
/// ```
/// use brisk_core::Timestamp;
///
/// let t: Timestamp = "2026-11-22T10:30:00Z".parse()?;
/// assert_eq!(t.to_string(), "2026-11-22T10:30:00.000Z");
/// assert_eq!(t, Timestamp::from_unix_millis(1_795_343_400_000));
/// assert_eq!("1795343400000".parse::<Timestamp>()?, t);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// The timestamp `millis` milliseconds after the Unix epoch (negative: before it).
    #[must_use]
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn as_unix_millis(self) -> i64 {
        self.0
    }

    /// The wall-clock time of `clock`, truncated to milliseconds.
    #[must_use]
    pub fn now(clock: &dyn Clock) -> Self {
        Self::from_system_time(clock.wall())
    }

    /// Converts a [`SystemTime`], truncating to milliseconds and saturating
    /// at the limits of `i64` milliseconds.
    #[must_use]
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => Self(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
            Err(before) => {
                let before = before.duration();
                // Round away from the epoch so that truncation goes towards the past.
                let millis = before.as_millis() + u128::from(before.subsec_nanos() % 1_000_000 != 0);
                Self(i64::try_from(millis).map_or(i64::MIN, |m| -m))
            }
        }
    }

    /// The same instant as a [`SystemTime`].
    #[must_use]
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_millis(self.0.unsigned_abs());
        if self.0 >= 0 {
            SystemTime::UNIX_EPOCH + magnitude
        } else {
            SystemTime::UNIX_EPOCH - magnitude
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        Self::from_system_time(time)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        t.to_system_time()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            // humantime formats only times from the epoch on; brisk's texts are
            // never that old, so print the raw milliseconds rather than fail.
            return write!(f, "{}", self.0);
        }
        fmt::Display::fmt(&humantime::format_rfc3339_millis(self.to_system_time()), f)
    }
}

impl FromStr for Timestamp {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(millis) = s.parse::<i64>() {
            return Ok(Self(millis));
        }
        humantime::parse_rfc3339(s)
            .map(Self::from_system_time)
            .map_err(|_| {
                ParseError::new(
                    "timestamp",
                    s,
                    "RFC 3339 in UTC (2026-11-22T10:30:00Z) or integer milliseconds since the Unix epoch",
                )
            })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;

        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 UTC timestamp or integer milliseconds since the Unix epoch")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::custom("timestamp milliseconds overflow i64"))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(TimestampVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_round_trip_truncates_to_millis() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let ts = Timestamp::from_system_time(t);
        assert_eq!(ts.as_unix_millis(), 1_700_000_000_123);
        let before = SystemTime::UNIX_EPOCH - Duration::from_micros(1500);
        assert_eq!(Timestamp::from_system_time(before).as_unix_millis(), -2);
        assert_eq!(
            Timestamp::from_unix_millis(-2).to_system_time(),
            SystemTime::UNIX_EPOCH - Duration::from_millis(2)
        );
    }

    #[test]
    fn text_forms() {
        let t: Timestamp = "2026-11-22T10:30:00.123456Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-22T10:30:00.123Z");
        assert!("2026-11-22 nope".parse::<Timestamp>().is_err());
        assert_eq!(Timestamp::from_unix_millis(-5).to_string(), "-5");
    }

    #[test]
    fn serde_accepts_text_and_integers() {
        let t: Timestamp = serde_json::from_str("\"2026-11-22T10:30:00Z\"").unwrap();
        let n: Timestamp = serde_json::from_str("1795343400000").unwrap();
        assert_eq!(t, n);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2026-11-22T10:30:00.000Z\"");
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
    }
}
