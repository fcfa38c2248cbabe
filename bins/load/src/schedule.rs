//! The arrival schedule: when each request of a run is meant to be sent.
//
// Open loop: the schedule, not the responses, decides the send times. The
// i-th request of a phase with rate r is due at phase_start + i / r. A
// worker that falls behind sends late, and its latency is still counted
// from the due time, so a stalled server shows up as the queue it causes
// (no coordinated omission).

use std::time::Duration;

use serde::Serialize;

/// A stretch of a run at one constant arrival rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Phase {
    /// Its name in reports (`baseline`, `spike`, `step 3`, ...).
    pub name: String,
    /// Requests per second.
    pub rate: f64,
    /// How long it lasts.
    #[serde(with = "secs")]
    pub duration: Duration,
}

impl Phase {
    /// A phase of `rate` requests per second for `duration`.
    pub fn new(name: impl Into<String>, rate: f64, duration: Duration) -> Self {
        Self {
            name: name.into(),
            rate,
            duration,
        }
    }
}

mod secs {
    pub(super) fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Phases back to back, with the due time of every request.
///
/// ```
/// use std::time::Duration;
/// use brisk_load::{Phase, Schedule};
///
/// let s = Schedule::new(vec![
///     Phase::new("a", 10.0, Duration::from_secs(1)),
///     Phase::new("b", 100.0, Duration::from_secs(1)),
/// ], u64::MAX);
/// assert_eq!(s.total(), 110);
/// assert_eq!(s.due(10), (1, Duration::from_secs(1)));
/// assert_eq!(s.due(11), (1, Duration::from_millis(1010)));
/// ```
#[derive(Clone, Debug)]
pub struct Schedule {
    phases: Vec<Phase>,
    /// (index of the phase's first request, the phase's start offset, its count)
    starts: Vec<(u64, Duration, u64)>,
    total: u64,
    capped: bool,
}

impl Schedule {
    /// The schedule of `phases`, cut to at most `max_requests` requests.
    #[must_use]
    pub fn new(phases: Vec<Phase>, max_requests: u64) -> Self {
        let mut starts = Vec::with_capacity(phases.len());
        let mut first = 0u64;
        let mut offset = Duration::ZERO;
        let mut capped = false;
        for p in &phases {
            let mut count = rate_count(p.rate, p.duration);
            if first.saturating_add(count) > max_requests {
                count = max_requests.saturating_sub(first);
                capped = true;
            }
            starts.push((first, offset, count));
            first += count;
            offset += p.duration;
        }
        Self {
            phases,
            starts,
            total: first,
            capped,
        }
    }

    /// The number of requests in the schedule.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether `max_requests` cut the schedule short.
    #[must_use]
    pub fn capped(&self) -> bool {
        self.capped
    }

    /// The phases.
    #[must_use]
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The total planned duration.
    #[must_use]
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The phase of request `i` and its due time from the start of the run.
    #[must_use]
    pub fn due(&self, i: u64) -> (usize, Duration) {
        let k = self
            .starts
            .partition_point(|&(first, _, _)| first <= i)
            .saturating_sub(1);
        // Phases with no requests (rate 0) share their first index with the
        // next phase; taking the last phase whose first index is <= i skips them.
        let (first, start, _) = self.starts[k];
        let rate = self.phases[k].rate;
        #[allow(clippy::cast_precision_loss)]
        let within = Duration::from_secs_f64((i - first) as f64 / rate);
        (k, start + within)
    }

    /// The target rate at `offset` from the start (0 past the end).
    #[must_use]
    pub fn rate_at(&self, offset: Duration) -> f64 {
        self.starts
            .iter()
            .zip(&self.phases)
            .find(|((_, start, _), p)| offset >= *start && offset < *start + p.duration)
            .map_or(0.0, |(_, p)| p.rate)
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn rate_count(rate: f64, duration: Duration) -> u64 {
    if rate.is_finite() && rate > 0.0 {
        (rate * duration.as_secs_f64()).floor() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_follow_each_phase_rate() {
        let s = Schedule::new(
            vec![
                Phase::new("a", 4.0, Duration::from_secs(2)),
                Phase::new("idle", 0.0, Duration::from_secs(1)),
                Phase::new("b", 2.0, Duration::from_secs(1)),
            ],
            u64::MAX,
        );
        assert_eq!(s.total(), 10);
        assert_eq!(s.due(0), (0, Duration::ZERO));
        assert_eq!(s.due(7), (0, Duration::from_millis(1750)));
        assert_eq!(s.due(8), (2, Duration::from_secs(3)));
        assert_eq!(s.due(9), (2, Duration::from_millis(3500)));
        assert!((s.rate_at(Duration::from_millis(3200)) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn max_requests_caps_the_schedule() {
        let s = Schedule::new(vec![Phase::new("a", 100.0, Duration::from_secs(10))], 250);
        assert_eq!(s.total(), 250);
        assert!(s.capped());
    }
}
