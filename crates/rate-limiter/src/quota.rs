//! Quotas: how much may pass per period, and their validated engine form.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use brisk_core::ConfigError;

/// One window of a limiter: `limit` units of cost per `period`, in one of
/// two shapes.
///
/// - **Token bucket** (the default, governor's `Quota`): up to `burst`
///   units at once (default: `limit`), and capacity comes back at a steady
///   `limit / period`, one unit every `period / limit`. Over any interval
///   of length `d` it admits at most `burst + limit × d / period`; in an
///   interval of length `period`, up to `limit + burst − 1` (almost twice
///   the limit with the default burst: a full burst, then the refill).
///   Set the burst with [`burst`](Self::burst).
/// - **Strict window** ([`strict`](Self::strict)): never more than `limit`
///   in **any** interval of length `period` (a sliding window), with up to
///   `burst` units at once; the price is a slower refill, `limit + 1 −
///   burst` units per `period` (GCRA with emission interval
///   `period / (limit + 1 − burst)` and `burst` units of tolerance, so that
///   a full burst plus the refill over one period never exceeds `limit`).
///
/// A unit is whatever the limiter counts: requests, tokens, micro-dollars.
/// A single request's cost may not exceed the burst (it could never pass).
///
/// ```
/// use std::time::Duration;
/// use brisk_rate_limiter::Quota;
///
/// let q = Quota::per_minute(100).named("ml-minute");
/// assert_eq!((q.limit(), q.period(), q.max_burst()), (100, Duration::from_secs(60), 100));
/// assert_eq!(q.to_string(), "ml-minute (100 per 60s)");
/// // At most 100 in any minute, up to 20 at once, 81 more a minute.
/// let strict = Quota::per_minute(100).strict(20);
/// assert_eq!((strict.max_burst(), strict.is_strict()), (20, true));
/// assert_eq!(strict.to_string(), "100 per 60s, strict, burst 20");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u64,
    period: Duration,
    shape: Shape,
    name: Option<Cow<'static, str>>,
}

/// The two shapes of a window, with the burst (`None`: the limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Shape {
    Bucket(Option<u64>),
    Strict(u64),
}

impl Quota {
    /// `limit` units per `period`. Checked when the limiter is built: both
    /// must be greater than zero.
    #[must_use]
    pub fn new(limit: u64, period: Duration) -> Self {
        Self {
            limit,
            period,
            shape: Shape::Bucket(None),
            name: None,
        }
    }

    /// `limit` units per second.
    #[must_use]
    pub fn per_second(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(1))
    }

    /// `limit` units per minute.
    #[must_use]
    pub fn per_minute(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    /// `limit` units per hour.
    #[must_use]
    pub fn per_hour(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(3600))
    }

    /// `limit` units per day (24 hours).
    #[must_use]
    pub fn per_day(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(86_400))
    }

    /// Gives the window a name, shown in errors and headers (default: none,
    /// shown as `window <index>`).
    #[must_use]
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Token bucket (the default shape) with a burst of `burst` units:
    /// at most `burst` at once, refilled at `limit` per `period`. Default
    /// burst: `limit`. Checked at build: between 1 and `limit`. Over an
    /// interval of length `period` this admits up to `limit + burst − 1`;
    /// [`strict`](Self::strict) trades refill speed for never more than
    /// `limit`. Replaces an earlier `strict`.
    #[must_use]
    pub fn burst(mut self, burst: u64) -> Self {
        self.shape = Shape::Bucket(Some(burst));
        self
    }

    /// Strict window: never more than `limit` in any interval of length
    /// `period`, at most `burst` units at once, and `limit + 1 − burst`
    /// units of capacity back per `period`. `strict(1)` spaces single units
    /// evenly (one every `period / limit`, no burst); `strict(limit)` lets
    /// the whole limit through at once, then one unit per `period`.
    /// Checked at build: between 1 and `limit`. Replaces an earlier
    /// [`burst`](Self::burst).
    #[must_use]
    pub fn strict(mut self, burst: u64) -> Self {
        self.shape = Shape::Strict(burst);
        self
    }

    /// The most units admitted per period (a strict window), or refilled
    /// per period (a token bucket).
    #[must_use]
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The most units admitted at once: the burst, which a single cost may
    /// not exceed.
    #[must_use]
    pub fn max_burst(&self) -> u64 {
        match self.shape {
            Shape::Bucket(None) => self.limit,
            Shape::Bucket(Some(b)) | Shape::Strict(b) => b,
        }
    }

    /// Whether this is a strict window ([`strict`](Self::strict)).
    #[must_use]
    pub fn is_strict(&self) -> bool {
        matches!(self.shape, Shape::Strict(_))
    }

    /// The period over which `limit` units come back.
    #[must_use]
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The name given with [`named`](Self::named), if any.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = match self.shape {
            Shape::Bucket(None) => String::new(),
            Shape::Bucket(Some(b)) => format!(", burst {b}"),
            Shape::Strict(b) => format!(", strict, burst {b}"),
        };
        match &self.name {
            Some(name) => write!(f, "{name} ({} per {:?}{shape})", self.limit, self.period),
            None => write!(f, "{} per {:?}{shape}", self.limit, self.period),
        }
    }
}

/// The engine's form of one quota, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    /// Emission interval: time one unit occupies, `ceil(period / limit)`
    /// for a token bucket, `ceil(period / (limit + 1 − burst))` for a
    /// strict window. Rounding up makes the rate at most the quota's.
    pub(crate) interval: u64,
    /// Burst capacity in time: `burst × interval`.
    pub(crate) capacity: u64,
    /// The burst, for the impossible-cost check.
    pub(crate) max_cost: u64,
}

/// Periods longer than this are refused; keeps every product in `u64`.
const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);

/// A validated, non-empty list of quotas.
#[derive(Clone, Debug)]
pub(crate) struct QuotaSet {
    pub(crate) quotas: Box<[Quota]>,
    pub(crate) params: Box<[Params]>,
}

impl QuotaSet {
    /// Validates `quotas`; `field` names them in errors (`"quotas"`,
    /// `"overrides[\"gold\"]"`).
    pub(crate) fn new(quotas: Vec<Quota>, field: &str) -> Result<Self, ConfigError> {
        if quotas.is_empty() {
            return Err(ConfigError::new(
                field.to_owned(),
                "must hold at least one quota (e.g. `Quota::per_minute(100)`)",
            ));
        }
        let mut params = Vec::with_capacity(quotas.len());
        for (i, q) in quotas.iter().enumerate() {
            let name = |part: &str| format!("{field}[{i}].{part}");
            if q.limit == 0 {
                return Err(ConfigError::new(
                    name("limit"),
                    format!("must be greater than zero ({q}); to block everything, do not call the API"),
                ));
            }
            if q.period.is_zero() {
                return Err(ConfigError::new(
                    name("period"),
                    format!("must be greater than zero ({q})"),
                ));
            }
            if q.period > MAX_PERIOD {
                return Err(ConfigError::new(
                    name("period"),
                    format!("must be at most 366 days ({q})"),
                ));
            }
            let burst = q.max_burst();
            if burst == 0 || burst > q.limit {
                return Err(ConfigError::new(
                    name("burst"),
                    format!("must be between 1 and the limit ({q})"),
                ));
            }
            let period = u64::try_from(q.period.as_nanos()).unwrap_or(u64::MAX);
            // A strict window refills `limit + 1 − burst` per period, so
            // that a full burst plus one period's refill stays within the
            // limit (the proof is in docs/rate-limiter.md).
            let per_period = if q.is_strict() {
                q.limit - burst + 1
            } else {
                q.limit
            };
            let interval = period.div_ceil(per_period);
            let Some(capacity) = interval.checked_mul(burst).filter(|c| *c <= u64::MAX / 8) else {
                let part = if q.is_strict() { "burst" } else { "limit" };
                return Err(ConfigError::new(
                    name(part),
                    format!("is too large for its period ({q})"),
                ));
            };
            params.push(Params {
                interval,
                capacity,
                max_cost: burst,
            });
        }
        Ok(Self {
            quotas: quotas.into_boxed_slice(),
            params: params.into_boxed_slice(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.params.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let e = QuotaSet::new(vec![], "quotas").unwrap_err();
        assert_eq!(e.field(), "quotas");
        let e = QuotaSet::new(vec![Quota::per_minute(5), Quota::per_hour(0)], "quotas").unwrap_err();
        assert_eq!(e.field(), "quotas[1].limit");
        let e = QuotaSet::new(vec![Quota::new(5, Duration::ZERO)], "quotas").unwrap_err();
        assert_eq!(e.field(), "quotas[0].period");
        let e = QuotaSet::new(vec![Quota::new(u64::MAX, Duration::from_secs(1))], "quotas");
        assert_eq!(e.unwrap_err().field(), "quotas[0].limit");
    }

    #[test]
    fn bursts_are_checked_and_shape_the_window() {
        let e = QuotaSet::new(vec![Quota::per_minute(5).strict(0)], "quotas").unwrap_err();
        assert_eq!(e.field(), "quotas[0].burst");
        let e = QuotaSet::new(vec![Quota::per_minute(5).burst(6)], "quotas").unwrap_err();
        assert_eq!(e.field(), "quotas[0].burst");
        // Strict, burst 1: one unit every period / limit, no tolerance.
        let p = QuotaSet::new(vec![Quota::per_second(10).strict(1)], "q")
            .unwrap()
            .params[0];
        assert_eq!(
            (p.interval, p.capacity, p.max_cost),
            (100_000_000, 100_000_000, 1)
        );
        // Strict, burst 4 of 10: refills 7 per second, holds 4.
        let p = QuotaSet::new(vec![Quota::per_second(10).strict(4)], "q")
            .unwrap()
            .params[0];
        assert_eq!(p.interval, 1_000_000_000u64.div_ceil(7));
        assert_eq!((p.capacity, p.max_cost), (4 * p.interval, 4));
        // A token bucket with a smaller burst keeps the rate.
        let p = QuotaSet::new(vec![Quota::per_second(10).burst(3)], "q")
            .unwrap()
            .params[0];
        assert_eq!(
            (p.interval, p.capacity, p.max_cost),
            (100_000_000, 300_000_000, 3)
        );
    }

    #[test]
    fn interval_rounds_up() {
        let s = QuotaSet::new(vec![Quota::per_minute(7)], "q").unwrap();
        let p = s.params[0];
        assert_eq!(p.interval, 60_000_000_000u64.div_ceil(7));
        assert!(p.capacity >= 60_000_000_000);
    }
}
