//! The backend's one error type, and how the pipeline classifies it.

use std::fmt;
use std::time::Duration;

use brisk_pipeline::{Classify, PipelineError, ShedReason};
use brisk_rate_limiter::RateLimitError;

/// Where a request's deadline ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadlineStage {
    /// Before it was sent: waiting for room in the queue, or in the queue.
    Queued,
    /// Waiting for a rate limiter (requests, tokens, budget, or a pause
    /// that upstream asked for).
    RateLimit,
    /// Between retries: the next try would have started after the deadline.
    Retry,
    /// Waiting for the response: the API (or the shared call this request
    /// joined) had not answered by the deadline.
    Response,
}

impl fmt::Display for DeadlineStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeadlineStage::Queued => "before it was sent",
            DeadlineStage::RateLimit => "waiting for the rate limiter",
            DeadlineStage::Retry => "waiting to retry",
            DeadlineStage::Response => "waiting for the response",
        })
    }
}

/// Why the OpenAI-compatible backend gave no answer.
///
/// Each variant says which case it is, so a caller can act on it: retried
/// cases ([`is_retryable`](Classify::is_retryable)) were retried with
/// brisk-core's backoff before they reached the caller; the others never
/// are. The retry table:
///
/// | condition | variant | retried |
/// |---|---|---|
/// | 429 with code `rate_limit_exceeded` (or no code) | [`RateLimited`](Self::RateLimited) | yes, after `retry-after` when given |
/// | 429 with code `insufficient_quota` | [`InsufficientQuota`](Self::InsufficientQuota) | never |
/// | 408, 409, 5xx | [`Http`](Self::Http) | yes |
/// | other 4xx | [`Http`](Self::Http) | never |
/// | no response within `request_timeout` | [`Timeout`](Self::Timeout) | yes |
/// | connection refused or reset | [`Transport`](Self::Transport) | yes |
/// | a body that is not the protocol's JSON | [`Malformed`](Self::Malformed) | never |
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenAiError {
    /// The request itself is invalid (checked before anything is sent).
    #[error("invalid request: `{field}` {reason}")]
    InvalidRequest {
        /// The request field at fault (`messages`, `temperature`, `n`, ...).
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// 429 with code `rate_limit_exceeded` (or without a code): too many
    /// requests or tokens for now. Retried.
    #[error("rate limited by the API (429): {message}")]
    RateLimited {
        /// How long the API asked to wait (`retry-after`, `retry-after-ms`).
        retry_after: Option<Duration>,
        /// The API's message.
        message: String,
    },
    /// 429 with code `insufficient_quota`: the account is out of credit.
    /// Never retried.
    #[error("the API account has no quota left (429 insufficient_quota): {message}")]
    InsufficientQuota {
        /// The API's message.
        message: String,
    },
    /// Any other HTTP error status. Retried for 408, 409 and 5xx.
    #[error("the API answered HTTP {status}{}: {message}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Http {
        /// The HTTP status.
        status: u16,
        /// The error code from the body (`{"error": {"code": ..}}`), if any.
        code: Option<String>,
        /// The error message from the body, or the start of the body.
        message: String,
        /// How long the API asked to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// No complete response within the per-attempt `request_timeout`.
    /// Retried.
    #[error("no response within {after:?}")]
    Timeout {
        /// The per-attempt timeout.
        after: Duration,
    },
    /// The connection failed (refused, reset, DNS). Retried.
    #[error("could not reach the API: {message}")]
    Transport {
        /// What the HTTP client said.
        message: String,
    },
    /// The response was not the protocol's JSON (or SSE): a clear error,
    /// never a panic. Not retried.
    #[error("malformed response: {message}")]
    Malformed {
        /// What was wrong, with the start of the offending text.
        message: String,
    },
    /// The request's deadline passed.
    #[error("deadline passed {stage}")]
    DeadlineExceeded {
        /// Where the request was when it passed.
        stage: DeadlineStage,
    },
    /// The endpoint's circuit breaker is open (or it was ejected after
    /// consecutive failures): nothing was sent.
    #[error("the API is unavailable (circuit breaker open): retry after {retry_after:?}")]
    Unavailable {
        /// When the breaker lets a probe through again.
        retry_after: Duration,
    },
    /// A local limit (requests, tokens or budget per period) refused the
    /// request and waiting could not help: its estimated cost is larger
    /// than a window's whole limit.
    #[error("local rate limit: {0}")]
    Limited(RateLimitError),
    /// The request queue is full (shed under overload).
    #[error("shed under overload: {reason}")]
    Shed {
        /// Why it was shed.
        reason: ShedReason,
    },
    /// The client is shutting down.
    #[error("the client is shut down")]
    Shutdown,
    /// An internal failure (a panic while calling the API), reported instead
    /// of unwinding into the caller.
    #[error("internal failure: {message}")]
    Internal {
        /// What happened.
        message: String,
    },
    /// The API failed and so did the local fallback model.
    #[error("the API failed ({remote}) and so did the local model: {local}")]
    FallbackFailed {
        /// Why the API gave no answer.
        remote: Box<OpenAiError>,
        /// Why the local model gave none.
        local: String,
    },
}

impl Classify for OpenAiError {
    fn is_retryable(&self) -> bool {
        match self {
            OpenAiError::RateLimited { .. } | OpenAiError::Timeout { .. } | OpenAiError::Transport { .. } => {
                true
            }
            OpenAiError::Http { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            OpenAiError::RateLimited { retry_after, .. } | OpenAiError::Http { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// 408 Request Timeout, 409 Conflict (OpenAI's "lock timeout"), 429 and
/// every 5xx.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

impl From<PipelineError<OpenAiError>> for OpenAiError {
    fn from(e: PipelineError<OpenAiError>) -> Self {
        use brisk_pipeline::DeadlineStage as P;
        match e {
            PipelineError::Upstream { error, .. } => error,
            PipelineError::DeadlineExceeded { stage } => OpenAiError::DeadlineExceeded {
                stage: match stage {
                    P::RateLimit => DeadlineStage::RateLimit,
                    P::Retry => DeadlineStage::Retry,
                    P::InFlight => DeadlineStage::Response,
                    _ => DeadlineStage::Queued,
                },
            },
            PipelineError::Unavailable { retry_after } => OpenAiError::Unavailable { retry_after },
            // (A limiter's deadline comes as DeadlineExceeded, stage RateLimit.)
            PipelineError::RateLimited(e) => OpenAiError::Limited(e),
            PipelineError::Shed { reason, .. } => OpenAiError::Shed { reason },
            PipelineError::Shutdown => OpenAiError::Shutdown,
            PipelineError::Panicked { message } => OpenAiError::Internal { message },
            other => OpenAiError::Internal {
                message: other.to_string(),
            },
        }
    }
}
