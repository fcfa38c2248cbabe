//! brisk's one retry policy: exponential backoff with full jitter, a cap, a
//! maximum number of attempts, and respect for a server's Retry-After.
//
// Why full jitter: with many clients failing together, "sleep a uniformly
// random time between zero and the exponential ceiling" spreads their retries
// best and finishes the work soonest (AWS Architecture Blog, "Exponential
// Backoff And Jitter", 2015). The ceiling doubles per retry from `base` up to
// `cap`.
//
// A server's Retry-After overrides the computed delay: it knows when it will
// take work again. Clients told the same instant would all return together, so
// a spread of up to a tenth of the hint is added on top (never taken off). A
// hint longer than `max_retry_after` ends the retries instead: sleeping an
// hour inside a request helps nobody, and the caller gets the hint back in
// its error.

use std::time::{Duration, SystemTime};

use crate::ConfigError;

/// A retry policy. Cheap to clone; start a sequence of retries with
/// [`Backoff::retries`].
///
/// Attempt numbering: the first call is attempt 1 and needs no delay; retry
/// `n` (counting from 0) waits a uniformly random time in
/// `0..=min(cap, base * 2^n)`.
///
/// ```
/// use std::time::Duration;
/// use brisk_core::Backoff;
///
/// let policy = Backoff::builder()
///     .base(Duration::from_millis(50))
///     .cap(Duration::from_secs(2))
///     .max_attempts(4)
///     .build()?;
/// let mut retries = policy.retries();
/// let mut delays = Vec::new();
/// while let Some(delay) = retries.next_delay() {
///     assert!(delay <= Duration::from_secs(2));
///     delays.push(delay);
/// }
/// assert_eq!(delays.len(), 3); // 4 attempts: the first, then 3 retries
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    max_attempts: u32,
    max_retry_after: Duration,
    seed: Option<u64>,
}

impl Backoff {
    /// A builder with the defaults: base 100 ms, cap 10 s, 5 attempts,
    /// Retry-After honoured up to 60 s, random (unseeded) jitter.
    pub fn builder() -> BackoffBuilder {
        BackoffBuilder {
            config: Backoff::default(),
        }
    }

    /// The delay before the first retry is at most this.
    #[must_use]
    pub fn base(&self) -> Duration {
        self.base
    }

    /// No delay exceeds this (except one a server asked for).
    #[must_use]
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// Attempts in all, counting the first.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The longest server-given Retry-After that is still waited for.
    #[must_use]
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The upper bound of the delay before retry `retry` (0-based):
    /// `min(cap, base * 2^retry)`.
    #[must_use]
    pub fn ceiling(&self, retry: u32) -> Duration {
        if retry >= 32 {
            return self.cap;
        }
        self.base
            .checked_mul(1u32 << retry.min(31))
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// A fresh sequence of retries under this policy. Seeded policies give
    /// the same delays every time.
    #[must_use]
    pub fn retries(&self) -> Retries {
        let rng = match self.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Retries {
            policy: self.clone(),
            retries_done: 0,
            rng,
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
            max_attempts: 5,
            max_retry_after: Duration::from_secs(60),
            seed: None,
        }
    }
}

/// Builds a [`Backoff`]; [`build`](Self::build) checks the values.
#[derive(Clone, Debug)]
#[must_use]
pub struct BackoffBuilder {
    config: Backoff,
}

impl BackoffBuilder {
    /// The ceiling of the first retry's delay; it doubles per retry. Default
    /// 100 ms; must be greater than zero.
    pub fn base(mut self, base: Duration) -> Self {
        self.config.base = base;
        self
    }

    /// The largest computed delay. Default 10 s; must be at least `base`.
    pub fn cap(mut self, cap: Duration) -> Self {
        self.config.cap = cap;
        self
    }

    /// Attempts in all, counting the first. Default 5; must be at least 1
    /// (1 means never retry).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts;
        self
    }

    /// The longest Retry-After a server may ask for and still be waited for;
    /// a longer one ends the retries. Default 60 s.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.config.max_retry_after = max;
        self
    }

    /// Makes the jitter deterministic: every [`Backoff::retries`] sequence
    /// draws the same delays. For tests. Default: unseeded.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// Checks the values and returns the policy.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `backoff.base`, `backoff.cap` or
    /// `backoff.max_attempts` when that value is out of range.
    pub fn build(self) -> Result<Backoff, ConfigError> {
        let c = self.config;
        if c.base.is_zero() {
            return Err(ConfigError::new("backoff.base", "must be greater than zero"));
        }
        if c.cap < c.base {
            return Err(ConfigError::new(
                "backoff.cap",
                format!("must be at least `base` ({:?}), got {:?}", c.base, c.cap),
            ));
        }
        if c.max_attempts == 0 {
            return Err(ConfigError::new(
                "backoff.max_attempts",
                "must be at least 1 (the first attempt counts)",
            ));
        }
        Ok(c)
    }
}

/// One sequence of retries under a [`Backoff`] policy.
#[derive(Debug)]
pub struct Retries {
    policy: Backoff,
    retries_done: u32,
    rng: fastrand::Rng,
}

impl Retries {
    /// The delay before the next retry, or `None` when the attempts are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.next_delay_after(None)
    }

    /// Like [`next_delay`](Self::next_delay), honouring a server's
    /// Retry-After: the delay is then `retry_after` plus a random spread of
    /// up to a tenth of it. Returns `None` when the attempts are used up or
    /// `retry_after` exceeds the policy's `max_retry_after`.
    pub fn next_delay_after(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.retries_done + 1 >= self.policy.max_attempts {
            return None;
        }
        let delay = match retry_after {
            Some(hint) if hint > self.policy.max_retry_after => return None,
            Some(hint) => hint + self.uniform(hint / 10),
            None => {
                let ceiling = self.policy.ceiling(self.retries_done);
                self.uniform(ceiling)
            }
        };
        self.retries_done += 1;
        Some(delay)
    }

    /// Attempts made so far, counting the first: 1 before any retry.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.retries_done + 1
    }

    /// The policy this sequence follows.
    #[must_use]
    pub fn policy(&self) -> &Backoff {
        &self.policy
    }

    fn uniform(&mut self, max: Duration) -> Duration {
        let max_nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.u64(0..=max_nanos))
    }
}

/// Parses an HTTP `Retry-After` value: either delay-seconds (`"120"`) or an
/// HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`), which is turned into a delay
/// from `now` (zero if it is past). Returns `None` for anything else.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use brisk_core::parse_retry_after;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(10)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff::builder()
            .base(Duration::from_millis(100))
            .cap(Duration::from_secs(1))
            .build()
            .unwrap();
        let ceilings: Vec<_> = (0..6).map(|r| b.ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn builder_names_the_bad_field() {
        let e = Backoff::builder().base(Duration::ZERO).build().unwrap_err();
        assert_eq!(e.field(), "backoff.base");
        let e = Backoff::builder()
            .cap(Duration::from_millis(1))
            .build()
            .unwrap_err();
        assert_eq!(e.field(), "backoff.cap");
        let e = Backoff::builder().max_attempts(0).build().unwrap_err();
        assert_eq!(e.field(), "backoff.max_attempts");
    }

    #[test]
    fn retry_after_overrides_and_long_hints_give_up() {
        let b = Backoff::builder()
            .seed(7)
            .max_retry_after(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut r = b.retries();
        let d = r.next_delay_after(Some(Duration::from_secs(20))).unwrap();
        assert!(
            d >= Duration::from_secs(20) && d <= Duration::from_secs(22),
            "{d:?}"
        );
        assert_eq!(r.next_delay_after(Some(Duration::from_secs(31))), None);
        assert_eq!(r.attempts(), 2);
    }
}
