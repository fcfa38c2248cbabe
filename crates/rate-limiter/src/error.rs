//! The one error type of the crate's limiters.

use std::time::Duration;

use crate::Quota;
use crate::gcra::Deny;

/// Why a request was not let through.
///
/// Every variant says what the caller needs to act: which window (its index
/// in the limiter's list and its [`Quota`]), and, where waiting helps, how
/// long ([`retry_after`](Self::retry_after)).
///
/// ```
/// use std::time::Duration;
/// use brisk_core::ManualClock;
/// use brisk_rate_limiter::{Quota, RateLimitError, RateLimiter};
///
/// let limiter = RateLimiter::builder()
///     .quota(Quota::per_minute(10).named("minute"))
///     .clock(ManualClock::new().shared())
///     .build()?;
/// limiter.check(10)?;
/// match limiter.check(1) {
///     Err(RateLimitError::Limited { window, quota, retry_after }) => {
///         assert_eq!((window, quota.name()), (0, Some("minute")));
///         assert_eq!(retry_after, Duration::from_secs(6));
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// A window has no room now; it will after `retry_after`.
    #[error("rate limited by window {window} ({quota}): retry after {retry_after:?}")]
    Limited {
        /// The index of the window that rejected, in the limiter's list.
        window: usize,
        /// That window's quota.
        quota: Quota,
        /// How long until the request would pass (as far as this window
        /// knows: the longest wait of all the windows that had no room).
        retry_after: Duration,
    },
    /// The upstream API said to wait (see [`UpstreamLimits`](crate::UpstreamLimits)),
    /// and the limiter is paused until then.
    #[error("paused by the upstream API's limits: retry after {retry_after:?}")]
    Paused {
        /// How long the pause still lasts.
        retry_after: Duration,
    },
    /// The cost is larger than a window's burst ([`Quota::max_burst`], the
    /// limit unless set lower): it could never pass, so it is refused at
    /// once instead of waiting forever.
    #[error("a cost of {cost} can never pass window {window} ({quota}): it exceeds the burst")]
    CostTooLarge {
        /// The cost asked for.
        cost: u64,
        /// The index of the window whose burst is below it.
        window: usize,
        /// That window's quota.
        quota: Quota,
    },
    /// Waiting for room would pass the deadline given to
    /// [`RateLimiter::acquire_until`](crate::RateLimiter::acquire_until);
    /// nothing was spent.
    #[error("window {window} ({quota}) would make the request wait {wait:?}, past its deadline")]
    DeadlineExceeded {
        /// The index of the window that needs the longest wait.
        window: usize,
        /// That window's quota.
        quota: Quota,
        /// How long the request would have had to wait.
        wait: Duration,
    },
    /// The shared backend (Redis) could not decide and the limiter is
    /// configured to fail closed.
    #[error("the rate limit backend is unavailable: {reason}")]
    Unavailable {
        /// What went wrong, from the backend's client.
        reason: String,
    },
}

impl RateLimitError {
    /// How long to wait before trying again, where waiting can help:
    /// `Some` for [`Limited`](Self::Limited), [`Paused`](Self::Paused) and
    /// [`DeadlineExceeded`](Self::DeadlineExceeded), `None` otherwise.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Limited { retry_after, .. } | Self::Paused { retry_after } => Some(*retry_after),
            Self::DeadlineExceeded { wait, .. } => Some(*wait),
            Self::CostTooLarge { .. } | Self::Unavailable { .. } => None,
        }
    }

    /// The index of the window concerned, if one is.
    #[must_use]
    pub fn window(&self) -> Option<usize> {
        match self {
            Self::Limited { window, .. }
            | Self::CostTooLarge { window, .. }
            | Self::DeadlineExceeded { window, .. } => Some(*window),
            Self::Paused { .. } | Self::Unavailable { .. } => None,
        }
    }

    pub(crate) fn from_deny(deny: Deny, quotas: &[Quota], cost: u64) -> Self {
        match deny {
            Deny::Limited { index, retry_after } => Self::Limited {
                window: index,
                quota: quotas[index].clone(),
                retry_after: Duration::from_nanos(retry_after),
            },
            Deny::TooLarge { index } => Self::CostTooLarge {
                cost,
                window: index,
                quota: quotas[index].clone(),
            },
            Deny::Deadline { index, wait } => Self::DeadlineExceeded {
                window: index,
                quota: quotas[index].clone(),
                wait: Duration::from_nanos(wait),
            },
        }
    }
}
