//! The pipeline's error type and the trait that classifies a handler's errors.

use std::fmt;
use std::time::Duration;

use brisk_core::Priority;
use brisk_rate_limiter::RateLimitError;

/// How the pipeline treats a handler's error: retry it or not, and after how
/// long.
///
/// Implement it for your handler's error type. An upstream's "429 Too Many
/// Requests" or "503" is retryable, often with a `Retry-After`
/// ([`brisk_core::parse_retry_after`] reads the header); a "400 Bad Request"
/// is not.
///
/// ```
/// use std::time::Duration;
/// use brisk_pipeline::Classify;
///
/// #[derive(Clone, Debug)]
/// enum ApiError { Busy { retry_after: Option<Duration> }, Invalid }
///
/// impl Classify for ApiError {
///     fn is_retryable(&self) -> bool {
///         matches!(self, ApiError::Busy { .. })
///     }
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             ApiError::Busy { retry_after } => *retry_after,
///             ApiError::Invalid => None,
///         }
///     }
/// }
///
/// assert!(ApiError::Busy { retry_after: None }.is_retryable());
/// assert!(!ApiError::Invalid.is_retryable());
/// ```
pub trait Classify {
    /// Whether trying again may succeed.
    fn is_retryable(&self) -> bool;

    /// How long the upstream asked to wait before the next try, if it said.
    /// It replaces the computed backoff delay (see
    /// [`brisk_core::Retries::next_delay_after`]). Default: `None`.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Why a request was shed (refused or dropped from the queue) instead of
/// being run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShedReason {
    /// The queue holds `depth` requests, at or over the admission limit of
    /// this priority (`limit`): lower priorities are refused first so that
    /// room stays for urgent work.
    Overloaded {
        /// Requests queued when this one was refused.
        depth: usize,
        /// The admission limit of its priority.
        limit: usize,
    },
    /// The request was queued, then dropped to make room for a more urgent
    /// one (`by`) arriving at a full queue.
    Evicted {
        /// The priority of the request that took its place.
        by: Priority,
    },
}

impl fmt::Display for ShedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShedReason::Overloaded { depth, limit } => write!(
                f,
                "the queue holds {depth} requests, at or over this priority's admission limit of {limit}"
            ),
            ShedReason::Evicted { by } => {
                write!(f, "dropped from the full queue to make room for a {by} request")
            }
        }
    }
}

/// Where a request's deadline ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadlineStage {
    /// While waiting for room in the queue (`submit`).
    Admission,
    /// In the queue: it was never started.
    Queued,
    /// Waiting for the rate limiter: the wait would have passed the deadline.
    RateLimit,
    /// Between retries: the next try would have started after the deadline.
    Retry,
    /// Waiting on a single-flight execution shared with other callers: this
    /// caller's own deadline passed while the execution went on for the
    /// callers with a later one.
    InFlight,
}

impl fmt::Display for DeadlineStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeadlineStage::Admission => "waiting for room in the queue",
            DeadlineStage::Queued => "in the queue, before it started",
            DeadlineStage::RateLimit => "waiting for the rate limiter",
            DeadlineStage::Retry => "waiting to retry",
            DeadlineStage::InFlight => "waiting on an execution shared with other callers",
        })
    }
}

/// Why a request got no result from the handler. `E` is the handler's error.
///
/// Every variant carries what a caller needs to act on it. Variants marked
/// "fallback" are answered by [`Handler::fallback`](crate::Handler::fallback)
/// when it returns a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError<E> {
    /// Shed under overload; see [`ShedReason`].
    #[error("{priority} request shed: {reason}")]
    Shed {
        /// The shed request's priority.
        priority: Priority,
        /// Why.
        reason: ShedReason,
    },
    /// The request's deadline passed before it could run.
    #[error("deadline passed {stage}")]
    DeadlineExceeded {
        /// Where it was when the deadline passed.
        stage: DeadlineStage,
    },
    /// The pipeline is shutting down (or stopped before answering).
    #[error("the pipeline is shut down")]
    Shutdown,
    /// The handler returned this error for the request, after `attempts`
    /// tries on `endpoint` (the last one). Fallback.
    #[error("upstream {endpoint} failed after {attempts} attempt(s): {error}")]
    Upstream {
        /// The handler's error from the last attempt.
        error: E,
        /// Tries made, counting the first.
        attempts: u32,
        /// The endpoint of the last attempt.
        endpoint: String,
    },
    /// Every endpoint's circuit breaker is open (or ejected); the first
    /// closes again after `retry_after`. Fallback.
    #[error("every endpoint is unavailable (breaker open or ejected): retry after {retry_after:?}")]
    Unavailable {
        /// The shortest wait until an endpoint can be tried again.
        retry_after: Duration,
    },
    /// A rate limiter refused the cost (it can never pass, or the limiter
    /// backend failed). Fallback.
    #[error("rate limit: {0}")]
    RateLimited(RateLimitError),
    /// The handler panicked while running this request's batch; the worker
    /// survived. Fallback.
    #[error("the handler panicked: {message}")]
    Panicked {
        /// The panic message, when it was a string.
        message: String,
    },
    /// The handler returned `got` results for a batch of `expected` items.
    /// Fallback.
    #[error("the handler returned {got} results for {expected} requests")]
    WrongResultCount {
        /// Items in the batch.
        expected: usize,
        /// Results returned.
        got: usize,
    },
}

impl<E> PipelineError<E> {
    /// Whether [`Handler::fallback`](crate::Handler::fallback) is asked for
    /// a value for this error: failures of the execution (upstream, breaker,
    /// limiter, panic), not refusals (shed, deadline, shutdown).
    #[must_use]
    pub fn allows_fallback(&self) -> bool {
        !matches!(
            self,
            PipelineError::Shed { .. } | PipelineError::DeadlineExceeded { .. } | PipelineError::Shutdown
        )
    }
}
