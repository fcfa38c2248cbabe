//! Quotas: how much may pass per period, and their validated engine form.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use brisk_core::ConfigError;

/// One window of a limiter: at most `limit` units of cost per `period`.
///
/// The semantics are GCRA's (the same as governor's `Quota`): a full window
/// admits up to `limit` at once (its burst), and capacity comes back at a
/// steady `limit / period`, one unit every `period / limit`. So over any
/// interval of length `d`, a window admits at most `limit + limit × d / period`.
///
/// A unit is whatever the limiter counts: requests, tokens, micro-dollars.
///
/// ```
/// use std::time::Duration;
/// use brisk_rate_limiter::Quota;
///
/// let q = Quota::per_minute(100).named("ml-minute");
/// assert_eq!((q.limit(), q.period()), (100, Duration::from_secs(60)));
/// assert_eq!(q.to_string(), "ml-minute (100 per 60s)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u64,
    period: Duration,
    name: Option<Cow<'static, str>>,
}

impl Quota {
    /// `limit` units per `period`. Checked when the limiter is built: both
    /// must be greater than zero.
    #[must_use]
    pub fn new(limit: u64, period: Duration) -> Self {
        Self {
            limit,
            period,
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

    /// The most units admitted at once, and per period.
    #[must_use]
    pub fn limit(&self) -> u64 {
        self.limit
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
        match &self.name {
            Some(name) => write!(f, "{name} ({} per {:?})", self.limit, self.period),
            None => write!(f, "{} per {:?}", self.limit, self.period),
        }
    }
}

/// The engine's form of one quota, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    /// Emission interval: time one unit occupies, `ceil(period / limit)`.
    /// Rounding up makes the rate at most the quota's, never more.
    pub(crate) interval: u64,
    /// Burst capacity in time: `limit × interval`.
    pub(crate) capacity: u64,
    /// The quota's limit, for the impossible-cost check.
    pub(crate) limit: u64,
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
            let period = u64::try_from(q.period.as_nanos()).unwrap_or(u64::MAX);
            let interval = period.div_ceil(q.limit);
            let Some(capacity) = interval.checked_mul(q.limit).filter(|c| *c <= u64::MAX / 8) else {
                return Err(ConfigError::new(
                    name("limit"),
                    format!("is too large for its period ({q})"),
                ));
            };
            params.push(Params {
                interval,
                capacity,
                limit: q.limit,
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
    fn interval_rounds_up() {
        let s = QuotaSet::new(vec![Quota::per_minute(7)], "q").unwrap();
        let p = s.params[0];
        assert_eq!(p.interval, 60_000_000_000u64.div_ceil(7));
        assert!(p.capacity >= 60_000_000_000);
    }
}
