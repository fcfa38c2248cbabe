//! brisk-pipeline: the request path for expensive calls (AI APIs, remote
//! classifiers), generic over what the call is.
//!
//! A [`Pipeline`] puts a bounded priority queue in front of a pool of
//! workers that call your [`Handler`] in micro-batches:
//!
//! - **Queue**: five [`Priority`](brisk_core::Priority) levels with aging
//!   (a request that has waited its priority's bound goes first), bounded
//!   capacity with an admission limit per priority, so Background and Low
//!   are shed (or evicted) first and room stays for Urgent and High.
//!   [`submit`](Pipeline::submit) waits for room, [`try_submit`](Pipeline::try_submit)
//!   fails fast with [`PipelineError::Shed`] and its [`ShedReason`].
//! - **Deadlines and cancellation**: a [`Job`] carries a deadline; dropping
//!   its [`Ticket`] cancels it. A request whose deadline passed or whose
//!   callers left is not started.
//! - **Single-flight**: jobs with the same key (a
//!   [`ContentHash`](brisk_core::ContentHash) of the text and the kind of
//!   request) in flight at once run once and share the result, at the most
//!   urgent priority and the latest deadline of the callers still waiting;
//!   each caller's own deadline still ends its own wait.
//! - **Micro-batching**: requests with the same [`Handler::batch_key`] share
//!   a call, up to an adaptive size and wait (AIMD on the call latency).
//! - **Workers**: bounded, autoscaled between a minimum and a maximum by
//!   queue depth and waiting time, with hysteresis; graceful
//!   [`shutdown`](Pipeline::shutdown) with a drain deadline.
//! - **Retries and breakers**: errors are classified by [`Classify`];
//!   retries use brisk-core's [`Backoff`](brisk_core::Backoff) and honour a
//!   retry-after. Each endpoint has a [`CircuitBreaker`]; a per-request
//!   [`Handler::fallback`] answers failures.
//! - **Rate limits and cost**: each call acquires its cost from
//!   brisk-rate-limiter limiters (requests, tokens, dollars) within the
//!   deadline; cost is counted per priority and per endpoint.
//! - **Balancing**: round robin, weighted, least outstanding, power of two
//!   choices and consistent hash over [`Endpoint`]s ([`Balancer`]), with
//!   passive ejection and an optional active health check.
//! - **Stats**: [`PipelineStats`], also through brisk-core's
//!   [`StatsSource`](brisk_core::StatsSource), with queue-wait
//!   [`Percentiles`] (p50/p95/p99) per priority and handler-call
//!   percentiles overall.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use brisk_core::{ContentHash, Priority};
//! use brisk_pipeline::{BatchResult, Classify, Endpoint, Handler, Job, Pipeline, PipelineError};
//!
//! #[derive(Clone, Debug, thiserror::Error)]
//! #[error("the model is overloaded")]
//! struct Overloaded;
//! impl Classify for Overloaded {
//!     fn is_retryable(&self) -> bool { true }
//! }
//!
//! /// Scores texts in batches (here: by length, standing in for a model call).
//! struct Sentiment;
//! impl Handler for Sentiment {
//!     type Request = String;
//!     type Response = f32;
//!     type Error = Overloaded;
//!
//!     async fn call(&self, _endpoint: &Endpoint, texts: &[String]) -> BatchResult<f32, Overloaded> {
//!         Ok(texts.iter().map(|t| Ok(t.len() as f32 / 280.0)).collect())
//!     }
//!
//!     fn fallback(&self, _text: &String, _error: &PipelineError<Overloaded>) -> Option<f32> {
//!         Some(0.5) // neutral, when the model cannot answer
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! let pipeline = Pipeline::builder(Sentiment)
//!     .min_workers(1)
//!     .max_workers(4)
//!     .max_batch_size(20)
//!     .max_batch_wait(Duration::from_millis(100))
//!     .build()?;
//!
//! let text = "Big news for $ABC today".to_owned();
//! let job = Job::new(text.clone())
//!     .priority(Priority::Urgent)
//!     .timeout(Duration::from_secs(2))
//!     .key(ContentHash::of_parts(&["sentiment", &text]));
//! let score = pipeline.call(job).await?;
//! assert!((score - 23.0 / 280.0).abs() < 1e-6);
//!
//! // Background work is shed first under overload; this one fits.
//! let ticket = pipeline.try_submit(Job::new("later".to_owned()).priority(Priority::Background))?;
//! assert!(ticket.await? > 0.0);
//!
//! let report = pipeline.shutdown(Duration::from_secs(5)).await;
//! assert!(report.drained);
//! assert_eq!(pipeline.stats().completed, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Time
//!
//! Deadlines, aging, breakers, ejection and latencies read the pipeline's
//! [`Clock`](brisk_core::Clock); waiting (lingering for a batch, retry
//! delays, rate limits) sleeps on tokio's timer. The clock must therefore
//! move with tokio's timer: the default [`SystemClock`](brisk_core::SystemClock),
//! or [`TokioClock`] in tests under `tokio::time::pause()`, where whole
//! retry and breaker cycles run in microseconds. [`CircuitBreaker`] and
//! [`Balancer`] take any clock, including a
//! [`ManualClock`](brisk_core::ManualClock). Rate limiters given to
//! [`PipelineBuilder::limit`] must use the pipeline's clock.
//!
//! # Feature flags
//!
//! None: the crate needs tokio (`rt`, `sync`, `time`), brisk-core and
//! brisk-rate-limiter only.
//!
//! # Implementation notes
//!
//! - **One mutex for the queue.** Five `VecDeque`s under a `std::sync::Mutex`,
//!   never held across an await or while answering a caller. Each operation
//!   touches one or two deque ends, so the lock is held for tens of
//!   nanoseconds; aging and eviction need a consistent view of all five
//!   levels, which lock-free queues would not give.
//! - **Workers pull.** Each worker pops its own next request (priority and
//!   aging decided at pop time, so a request's rank is never stale), then
//!   takes queued requests with the same batch key. While it lingers for a
//!   batch its key is marked "forming": other workers skip that key, and new
//!   arrivals of it wake only the lingering worker.
//! - **Single-flight without queueing.** Joining an in-flight key takes no
//!   queue room; the flight is removed from the map before its result is
//!   sent, so a late caller starts a new flight instead of missing the
//!   answer. A reply dropped unanswered (shutdown, abort) answers
//!   [`PipelineError::Shutdown`]: no caller waits forever. A more urgent
//!   joiner moves the queued request up a level; each keyed ticket with a
//!   deadline carries its own timer, so one caller's deadline neither
//!   cancels the others nor is stretched by them.
//! - **Panics.** The handler's future runs under `catch_unwind`: a panic
//!   fails its batch with [`PipelineError::Panicked`]; it counts neither for
//!   nor against the endpoint's breaker.
//! - **Adaptive batching.** After each successful call: at or under the
//!   latency target, a full batch grows the size by an eighth (at least 1)
//!   and the wait by an eighth of its maximum; over it, the size shrinks to
//!   three quarters and the wait halves. See `docs/pipeline.md` for tuning.

mod balance;
mod breaker;
mod clock;
mod error;
mod flight;
mod handler;
mod histogram;
mod pipeline;
mod queue;
mod stats;
mod worker;

pub use balance::{Balancer, EjectionConfig, Endpoint, EndpointStats, Pick, Strategy};
pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use clock::TokioClock;
pub use error::{Classify, DeadlineStage, PipelineError, ShedReason};
pub use handler::{BatchResult, Handler, Job};
pub use histogram::Percentiles;
pub use pipeline::{Pipeline, PipelineBuilder, ShutdownReport, Ticket};
pub use stats::PipelineStats;
