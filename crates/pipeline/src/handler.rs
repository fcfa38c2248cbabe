//! What the pipeline runs: the [`Handler`] trait, and a [`Job`] (a request
//! with its priority, deadline and single-flight key).

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use brisk_core::{ContentHash, Priority};

use crate::balance::Endpoint;
use crate::error::{Classify, PipelineError};

/// The results of one upstream call: one per request, in order, or an error
/// for the whole call.
pub type BatchResult<T, E> = Result<Vec<Result<T, E>>, E>;

/// The expensive call a pipeline runs, generic over what it is (an LLM API,
/// a classifier service, a database write).
///
/// `call` gets a batch of requests (one request when batching is off) and
/// the endpoint chosen for it, and returns one result per request. A
/// whole-call error (a timeout, a 503) fails or retries every request of the
/// batch; an error in one request's slot fails or retries that request only.
///
/// ```
/// use brisk_pipeline::{BatchResult, Classify, Endpoint, Handler};
///
/// #[derive(Clone, Debug, thiserror::Error)]
/// #[error("upstream said no")]
/// struct No;
/// impl Classify for No {
///     fn is_retryable(&self) -> bool { false }
/// }
///
/// struct Lengths;
/// impl Handler for Lengths {
///     type Request = String;
///     type Response = usize;
///     type Error = No;
///     async fn call(&self, _endpoint: &Endpoint, batch: &[String]) -> BatchResult<usize, No> {
///         Ok(batch.iter().map(|s| Ok(s.len())).collect())
///     }
/// }
/// # let _ = Lengths;
/// ```
pub trait Handler: Send + Sync + 'static {
    /// One request.
    type Request: Send + Sync + 'static;
    /// One request's answer. `Clone` because identical requests share it.
    type Response: Clone + Send + 'static;
    /// The handler's error; [`Classify`] says whether to retry it.
    type Error: Classify + Clone + fmt::Debug + fmt::Display + Send + Sync + 'static;

    /// Runs a batch on `endpoint`: one result per request, in order.
    fn call(
        &self,
        endpoint: &Endpoint,
        batch: &[Self::Request],
    ) -> impl Future<Output = BatchResult<Self::Response, Self::Error>> + Send;

    /// Requests with the same batch key may share a call (and go to the same
    /// endpoint under [`Strategy::ConsistentHash`](crate::Strategy::ConsistentHash)).
    /// Default: 0 for every request (all batchable together).
    fn batch_key(&self, request: &Self::Request) -> u64 {
        let _ = request;
        0
    }

    /// The request's cost, counted per priority and per endpoint in the
    /// stats (tokens or micro-dollars, say). Default 1.
    fn cost(&self, request: &Self::Request) -> u64 {
        let _ = request;
        1
    }

    /// A result for a request that failed (see
    /// [`PipelineError::allows_fallback`]): a cached answer, a neutral
    /// default. Default: none, the caller gets the error.
    fn fallback(
        &self,
        request: &Self::Request,
        error: &PipelineError<Self::Error>,
    ) -> Option<Self::Response> {
        let _ = (request, error);
        None
    }
}

/// A request with how it should be run. `Job::from(request)` (or passing
/// the request itself where `impl Into<Job<_>>` is taken) gives the
/// defaults: [`Priority::Normal`], no deadline, no single-flight key.
///
/// ```
/// use std::time::Duration;
/// use brisk_core::{ContentHash, Priority};
/// use brisk_pipeline::Job;
///
/// let text = "Big news for $ABC";
/// let job = Job::new(text.to_owned())
///     .priority(Priority::Urgent)
///     .timeout(Duration::from_secs(2))
///     .key(ContentHash::of_parts(&["sentiment", text]));
/// assert_eq!(job.get_priority(), Priority::Urgent);
/// ```
#[must_use]
pub struct Job<R> {
    pub(crate) request: R,
    pub(crate) priority: Priority,
    pub(crate) deadline: Option<Instant>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) key: Option<ContentHash>,
}

impl<R> Job<R> {
    /// A job with the defaults.
    pub fn new(request: R) -> Self {
        Self {
            request,
            priority: Priority::Normal,
            deadline: None,
            timeout: None,
            key: None,
        }
    }

    /// Sets the priority. Default [`Priority::Normal`].
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The request must start by `deadline`, an instant of the pipeline's
    /// clock. Default: none.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The request must start within `timeout` of its submission (by the
    /// pipeline's clock). Default: none. With [`deadline`](Self::deadline)
    /// too, the earlier wins.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Identical requests in flight at once (same key: usually the content
    /// hash of the text and the kind of request, see
    /// [`ContentHash::of_parts`]) run once and share the result.
    /// Default: none.
    pub fn key(mut self, key: ContentHash) -> Self {
        self.key = Some(key);
        self
    }

    /// The priority.
    #[must_use]
    pub fn get_priority(&self) -> Priority {
        self.priority
    }

    /// The request.
    pub fn request(&self) -> &R {
        &self.request
    }

    /// The request, giving up the rest.
    pub fn into_request(self) -> R {
        self.request
    }
}

impl<R> From<R> for Job<R> {
    fn from(request: R) -> Self {
        Job::new(request)
    }
}

impl<R: fmt::Debug> fmt::Debug for Job<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("request", &self.request)
            .field("priority", &self.priority)
            .field("deadline", &self.deadline)
            .field("timeout", &self.timeout)
            .field("key", &self.key)
            .finish()
    }
}
