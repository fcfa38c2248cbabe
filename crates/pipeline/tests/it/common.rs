//! A test handler that records its calls, and helpers.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brisk_core::Clock;
use brisk_pipeline::{BatchResult, Classify, Endpoint, Handler, PipelineError, TokioClock};
use tokio::sync::Semaphore;

/// The test handler's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TestError {
    pub(crate) retryable: bool,
    pub(crate) retry_after: Option<Duration>,
}

impl TestError {
    pub(crate) fn fatal() -> Self {
        Self {
            retryable: false,
            retry_after: None,
        }
    }

    pub(crate) fn busy(retry_after: Option<Duration>) -> Self {
        Self {
            retryable: true,
            retry_after,
        }
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "test error (retryable: {})", self.retryable)
    }
}

impl Classify for TestError {
    fn is_retryable(&self) -> bool {
        self.retryable
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// One call the handler saw.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) endpoint: String,
    pub(crate) items: Vec<u64>,
    pub(crate) at: Instant,
}

/// What the next call does, when scripted.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// The whole call fails.
    Fail(TestError),
    /// Item results: `None` = ok, `Some(e)` = that error.
    Items(Vec<Option<TestError>>),
}

/// Doubles each number, after waiting for the gate (if any) and sleeping
/// `delay + per_item * n` of tokio time. Numbers from 1000 up panic.
#[derive(Clone)]
pub(crate) struct Echo {
    pub(crate) calls: Arc<Mutex<Vec<Call>>>,
    pub(crate) gate: Option<Arc<Semaphore>>,
    pub(crate) delay: Arc<Mutex<Duration>>,
    pub(crate) per_item: Arc<Mutex<Duration>>,
    pub(crate) script: Arc<Mutex<VecDeque<Step>>>,
    pub(crate) keys: u64,
    pub(crate) fallback: Option<u64>,
    pub(crate) failing_endpoints: Arc<Mutex<Vec<String>>>,
}

impl Default for Echo {
    fn default() -> Self {
        Self {
            calls: Arc::default(),
            gate: None,
            delay: Arc::new(Mutex::new(Duration::ZERO)),
            per_item: Arc::new(Mutex::new(Duration::ZERO)),
            script: Arc::default(),
            keys: 1,
            fallback: None,
            failing_endpoints: Arc::default(),
        }
    }
}

impl Echo {
    pub(crate) fn gated() -> (Self, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        (
            Self {
                gate: Some(Arc::clone(&gate)),
                ..Self::default()
            },
            gate,
        )
    }

    pub(crate) fn with_delay(delay: Duration) -> Self {
        Self {
            delay: Arc::new(Mutex::new(delay)),
            ..Self::default()
        }
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Every item the handler was called with, in call order.
    pub(crate) fn items(&self) -> Vec<u64> {
        self.calls().into_iter().flat_map(|c| c.items).collect()
    }

    pub(crate) fn push(&self, step: Step) {
        self.script.lock().unwrap().push_back(step);
    }
}

impl Handler for Echo {
    type Request = u64;
    type Response = u64;
    type Error = TestError;

    async fn call(&self, endpoint: &Endpoint, batch: &[u64]) -> BatchResult<u64, TestError> {
        self.calls.lock().unwrap().push(Call {
            endpoint: endpoint.name().to_owned(),
            items: batch.to_vec(),
            at: TokioClock.now(),
        });
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        let delay = *self.delay.lock().unwrap();
        let n = u32::try_from(batch.len()).unwrap();
        let total = delay + *self.per_item.lock().unwrap() * n;
        if !total.is_zero() {
            tokio::time::sleep(total).await;
        }
        assert!(batch.iter().all(|&x| x < 1000), "the handler was given {batch:?}");
        if self
            .failing_endpoints
            .lock()
            .unwrap()
            .iter()
            .any(|e| e == endpoint.name())
        {
            return Err(TestError::fatal());
        }
        match self.script.lock().unwrap().pop_front() {
            Some(Step::Fail(e)) => Err(e),
            Some(Step::Items(plan)) => Ok(batch
                .iter()
                .zip(plan.into_iter().chain(std::iter::repeat(None)))
                .map(|(x, e)| e.map_or(Ok(x * 2), Err))
                .collect()),
            None => Ok(batch.iter().map(|x| Ok(x * 2)).collect()),
        }
    }

    fn batch_key(&self, request: &u64) -> u64 {
        request % self.keys
    }

    fn fallback(&self, _request: &u64, _error: &PipelineError<TestError>) -> Option<u64> {
        self.fallback
    }
}

/// Lets other tasks run until `cond` holds (no time passes).
pub(crate) async fn until(mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition never held");
}
