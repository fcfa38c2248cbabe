//! Five request priorities, shared by the pipeline, the WebSocket hub and the
//! server.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// How urgently a piece of work should be done.
///
/// Priorities are ordered by urgency: `Urgent > High > Normal > Low >
/// Background`, so `max()` picks the most urgent. [`Priority::index`] numbers
/// them from 0 (urgent) to 4 (background) for array-indexed queues.
///
/// In text and serde they are lowercase names (`"urgent"`); parsing ignores
/// case, so `"URGENT"` is accepted too.
///
/// ```
/// use brisk_core::Priority;
///
/// assert!(Priority::Urgent > Priority::Low);
/// assert_eq!(Priority::default(), Priority::Normal);
/// assert_eq!("HIGH".parse::<Priority>()?, Priority::High);
/// assert_eq!(Priority::Background.index(), 4);
/// let most_urgent = [Priority::Low, Priority::High, Priority::Normal].into_iter().max();
/// assert_eq!(most_urgent, Some(Priority::High));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Priority {
    /// Must be answered now: a user is waiting on it.
    Urgent,
    /// Ahead of normal work.
    High,
    /// The default.
    #[default]
    Normal,
    /// Behind normal work; shed early under overload.
    Low,
    /// Only when nothing else waits; shed first under overload.
    Background,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 5] = [
        Priority::Urgent,
        Priority::High,
        Priority::Normal,
        Priority::Low,
        Priority::Background,
    ];

    /// The number of priorities.
    pub const COUNT: usize = 5;

    /// 0 for `Urgent` up to 4 for `Background`: an index into `[T; Priority::COUNT]`.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The priority with this [`index`](Self::index), if there is one.
    #[must_use]
    pub const fn from_index(index: usize) -> Option<Self> {
        if index < Self::COUNT {
            Some(Self::ALL[index])
        } else {
            None
        }
    }

    /// The lowercase name: `"urgent"`, `"high"`, `"normal"`, `"low"` or `"background"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
            Priority::Background => "background",
        }
    }
}

impl Ord for Priority {
    fn cmp(&self, other: &Self) -> Ordering {
        // A smaller index is more urgent, and more urgent compares greater.
        other.index().cmp(&self.index())
    }
}

impl PartialOrd for Priority {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| ParseError::new("priority", s, "one of urgent, high, normal, low, background"))
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_by_urgency() {
        let mut all = Priority::ALL;
        all.sort();
        assert_eq!(
            all,
            [
                Priority::Background,
                Priority::Low,
                Priority::Normal,
                Priority::High,
                Priority::Urgent
            ]
        );
    }

    #[test]
    fn index_round_trips() {
        for (i, p) in Priority::ALL.into_iter().enumerate() {
            assert_eq!(p.index(), i);
            assert_eq!(Priority::from_index(i), Some(p));
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
        }
        assert_eq!(Priority::from_index(5), None);
    }
}
