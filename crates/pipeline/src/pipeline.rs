//! The pipeline: its builder, submission, and the handle callers hold.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use brisk_core::{Backoff, ConfigError, Priority, SharedClock, StatsReport, StatsSource, SystemClock};
use brisk_rate_limiter::RateLimiter;
use tokio::sync::oneshot;

use crate::balance::{Balancer, EjectionConfig, Endpoint, Strategy};
use crate::breaker::BreakerConfig;
use crate::error::{DeadlineStage, PipelineError};
use crate::flight::{Joined, Outcome, Reply};
use crate::handler::{Handler, Job};
use crate::queue::{Queue, QueueLimits, Queued};
use crate::stats::{Counters, PipelineStats};
use crate::worker::{self, Admitted, Config, HealthFn, Item, Limit, Shared, State};

/// Builds a [`Pipeline`]. Every setter's docs give its default;
/// [`build`](Self::build) checks the values and names the field that is
/// wrong.
#[must_use]
pub struct PipelineBuilder<H: Handler> {
    handler: H,
    name: String,
    capacity: usize,
    admit_share: [f64; Priority::COUNT],
    max_wait: [Option<Duration>; Priority::COUNT],
    min_workers: usize,
    max_workers: usize,
    min_batch: usize,
    max_batch: usize,
    max_batch_wait: Duration,
    latency_target: Duration,
    scale_interval: Duration,
    scale_up_depth: usize,
    backoff: Backoff,
    endpoints: Option<Vec<Endpoint>>,
    strategy: Strategy,
    breaker: BreakerConfig,
    ejection: EjectionConfig,
    limits: Vec<Limit<H::Request>>,
    health: Option<(Duration, HealthFn)>,
    health_timeout: Duration,
    clock: SharedClock,
}

impl<H: Handler> PipelineBuilder<H> {
    fn new(handler: H) -> Self {
        Self {
            handler,
            name: "default".into(),
            capacity: 10_000,
            admit_share: [1.0, 1.0, 0.85, 0.70, 0.50],
            max_wait: [
                None,
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(5)),
                Some(Duration::from_secs(15)),
                Some(Duration::from_secs(30)),
            ],
            min_workers: 1,
            max_workers: 8,
            min_batch: 1,
            max_batch: 1,
            max_batch_wait: Duration::ZERO,
            latency_target: Duration::from_secs(1),
            scale_interval: Duration::from_millis(100),
            scale_up_depth: 4,
            backoff: Backoff::default(),
            endpoints: None,
            strategy: Strategy::RoundRobin,
            breaker: BreakerConfig::default(),
            ejection: EjectionConfig::default(),
            limits: Vec::new(),
            health: None,
            health_timeout: Duration::from_secs(2),
            clock: SystemClock::shared(),
        }
    }

    /// The `pipeline` label on the stats. Default `"default"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Requests the queue holds at most. Default 10,000; at least 1.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The share of the capacity up to which requests of `priority` are
    /// admitted; past it they evict a less urgent request or are shed.
    /// Defaults: urgent and high 1.0, normal 0.85, low 0.70, background
    /// 0.50. Each in `(0, 1]`, never larger for a less urgent priority.
    pub fn admit_share(mut self, priority: Priority, share: f64) -> Self {
        self.admit_share[priority.index()] = share;
        self
    }

    /// Aging: a request of `priority` that has waited `bound` goes before
    /// every request that has not waited its own bound (oldest first).
    /// `None` turns aging off for that priority. Defaults: urgent none,
    /// high 1 s, normal 5 s, low 15 s, background 30 s; a bound must be
    /// greater than zero.
    pub fn max_wait(mut self, priority: Priority, bound: Option<Duration>) -> Self {
        self.max_wait[priority.index()] = bound;
        self
    }

    /// The fewest workers (concurrent batches). Default 1; at least 1 and at
    /// most `max_workers`.
    pub fn min_workers(mut self, n: usize) -> Self {
        self.min_workers = n;
        self
    }

    /// The most workers. Default 8.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = n;
        self
    }

    /// Both `min_workers` and `max_workers`: a fixed pool.
    pub fn workers(self, n: usize) -> Self {
        self.min_workers(n).max_workers(n)
    }

    /// The largest batch, where the adaptive size starts. Default 1 (no
    /// batching); at least 1.
    pub fn max_batch_size(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }

    /// The smallest the adaptive batch size shrinks to. Default 1; at least
    /// 1 and at most `max_batch_size`.
    pub fn min_batch_size(mut self, n: usize) -> Self {
        self.min_batch = n;
        self
    }

    /// How long a batch may wait to fill, counted from its oldest request's
    /// arrival; adapted between zero and this. Urgent requests never wait.
    /// Default zero (no waiting).
    pub fn max_batch_wait(mut self, d: Duration) -> Self {
        self.max_batch_wait = d;
        self
    }

    /// The upstream call latency the adaptive batch size aims for: full
    /// batches faster than this grow it, slower calls shrink it. Also the
    /// queue wait above which the autoscaler adds workers. Default 1 s;
    /// greater than zero.
    pub fn latency_target(mut self, d: Duration) -> Self {
        self.latency_target = d;
        self
    }

    /// How often the autoscaler looks at the queue. Default 100 ms; greater
    /// than zero. It adds a worker after 2 looks in a row with more than
    /// `scale_up_depth` requests queued per worker (or the oldest waiting
    /// longer than `latency_target`), and retires one after 20 looks in a row
    /// with an empty queue and an idle worker.
    pub fn scale_interval(mut self, d: Duration) -> Self {
        self.scale_interval = d;
        self
    }

    /// Queued requests per worker above which the autoscaler adds one.
    /// Default 4; at least 1.
    pub fn scale_up_depth(mut self, n: usize) -> Self {
        self.scale_up_depth = n;
        self
    }

    /// The retry policy (brisk-core's [`Backoff`]). Default
    /// `Backoff::default()`: 5 attempts, 100 ms base, 10 s cap.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The upstream endpoints. Default: one endpoint called `"default"`;
    /// an empty list is an error.
    pub fn endpoints(mut self, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        self.endpoints = Some(endpoints.into_iter().collect());
        self
    }

    /// How endpoints are chosen. Default [`Strategy::RoundRobin`].
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Each endpoint's circuit breaker. Default [`BreakerConfig::default`].
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// Passive health: ejection after consecutive failures. Default
    /// [`EjectionConfig::default`].
    pub fn ejection(mut self, config: EjectionConfig) -> Self {
        self.ejection = config;
        self
    }

    /// Each call first acquires `cost(batch)` from `limiter` (waiting, within
    /// the earliest deadline in the batch). Add one per budget: requests
    /// (`|_| 1`), tokens, micro-dollars. The limiter must use the
    /// pipeline's clock. Default: no limits.
    pub fn limit(
        mut self,
        limiter: RateLimiter,
        cost: impl Fn(&[H::Request]) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.limits.push(Limit {
            limiter,
            cost: Box::new(cost),
        });
        self
    }

    /// Active health: every `interval`, `check(endpoint)` for each endpoint
    /// in turn; one that answers `false` gets no calls until it answers
    /// `true`. A check that takes longer than
    /// [`health_check_timeout`](Self::health_check_timeout) counts as
    /// `false`. Default: none; the interval must be greater than zero.
    pub fn health_check<F, Fut>(mut self, interval: Duration, check: F) -> Self
    where
        F: Fn(Endpoint) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.health = Some((interval, Arc::new(move |ep| Box::pin(check(ep)))));
        self
    }

    /// How long one active health check may take before it counts as a
    /// failure (the endpoint is marked unhealthy and the round goes on to
    /// the next endpoint). Default 2 s; greater than zero.
    pub fn health_check_timeout(mut self, timeout: Duration) -> Self {
        self.health_timeout = timeout;
        self
    }

    /// The clock for deadlines, aging, breakers and latencies. It must move
    /// with tokio's timer, which the pipeline sleeps on: the default
    /// [`SystemClock`], or [`TokioClock`](crate::TokioClock) under tokio's
    /// paused time in tests.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration and starts the workers on the current tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: `capacity`, `admit_share.<p>`,
    /// `max_wait.<p>`, `min_workers` (0 or above `max_workers`),
    /// `max_batch_size`, `min_batch_size`, `latency_target`,
    /// `scale_interval`, `scale_up_depth`, `endpoints`, `breaker.<field>`,
    /// `ejection.<field>`, `health_check.interval`,
    /// `health_check.timeout`, or `runtime` when called
    /// outside a tokio runtime.
    pub fn build(self) -> Result<Pipeline<H>, ConfigError> {
        if self.capacity == 0 {
            return Err(ConfigError::new("capacity", "must be at least 1"));
        }
        let mut admit = [0usize; Priority::COUNT];
        for p in Priority::ALL {
            let share = self.admit_share[p.index()];
            let field = || format!("admit_share.{p}");
            if !(share > 0.0 && share <= 1.0) {
                return Err(ConfigError::new(
                    field(),
                    format!("must be in (0, 1], got {share}"),
                ));
            }
            if p.index() > 0 && share > self.admit_share[p.index() - 1] {
                return Err(ConfigError::new(
                    field(),
                    format!("must not exceed the share of more urgent priorities, got {share}"),
                ));
            }
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let limit = ((self.capacity as f64 * share).ceil() as usize).clamp(1, self.capacity);
            admit[p.index()] = limit;
        }
        for p in Priority::ALL {
            if self.max_wait[p.index()].is_some_and(|d| d.is_zero()) {
                return Err(ConfigError::new(
                    format!("max_wait.{p}"),
                    "must be greater than zero (or None)",
                ));
            }
        }
        if self.min_workers == 0 || self.min_workers > self.max_workers {
            return Err(ConfigError::new(
                "min_workers",
                format!(
                    "must be in 1..=max_workers ({}), got {}",
                    self.max_workers, self.min_workers
                ),
            ));
        }
        if self.max_batch == 0 {
            return Err(ConfigError::new("max_batch_size", "must be at least 1"));
        }
        if self.min_batch == 0 || self.min_batch > self.max_batch {
            return Err(ConfigError::new(
                "min_batch_size",
                format!(
                    "must be in 1..=max_batch_size ({}), got {}",
                    self.max_batch, self.min_batch
                ),
            ));
        }
        if self.latency_target.is_zero() {
            return Err(ConfigError::new("latency_target", "must be greater than zero"));
        }
        if self.scale_interval.is_zero() {
            return Err(ConfigError::new("scale_interval", "must be greater than zero"));
        }
        if self.scale_up_depth == 0 {
            return Err(ConfigError::new("scale_up_depth", "must be at least 1"));
        }
        if let Some((interval, _)) = &self.health
            && interval.is_zero()
        {
            return Err(ConfigError::new(
                "health_check.interval",
                "must be greater than zero",
            ));
        }
        if self.health_timeout.is_zero() {
            return Err(ConfigError::new(
                "health_check.timeout",
                "must be greater than zero",
            ));
        }
        let endpoints = self.endpoints.unwrap_or_else(|| vec![Endpoint::new("default")]);
        let balancer = Balancer::new(
            endpoints,
            self.strategy,
            &self.breaker,
            self.ejection,
            self.clock.clone(),
        )?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| ConfigError::new("runtime", "build() must be called inside a tokio runtime"))?;
        let config = Config {
            name: self.name,
            min_workers: self.min_workers,
            max_workers: self.max_workers,
            min_batch: self.min_batch,
            max_batch: self.max_batch,
            max_batch_wait: self.max_batch_wait,
            latency_target: self.latency_target,
            scale_interval: self.scale_interval,
            scale_up_depth: self.scale_up_depth,
        };
        let queue = Queue::new(QueueLimits {
            admit,
            max_wait: self.max_wait,
        });
        let shared = Arc::new(Shared::new(
            self.handler,
            config,
            queue,
            balancer,
            self.backoff,
            self.limits,
            self.clock,
            runtime,
        ));
        let health = self
            .health
            .map(|(every, check)| (every, self.health_timeout, check));
        worker::start(&shared, health);
        Ok(Pipeline {
            guard: Arc::new(Guard {
                shared: Arc::clone(&shared),
            }),
            shared,
        })
    }
}

impl<H: Handler> fmt::Debug for PipelineBuilder<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("min_workers", &self.min_workers)
            .field("max_workers", &self.max_workers)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

/// The engine: a bounded priority queue in front of a pool of workers that
/// run a [`Handler`] in batches, with single-flight, deadlines, retries,
/// rate limits, circuit breakers and endpoint balancing. Cheap to clone;
/// the workers stop when the last clone is dropped (or at
/// [`shutdown`](Self::shutdown)).
pub struct Pipeline<H: Handler> {
    shared: Arc<Shared<H>>,
    guard: Arc<Guard<H>>,
}

impl<H: Handler> Clone for Pipeline<H> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            guard: Arc::clone(&self.guard),
        }
    }
}

/// Stops the workers when the last `Pipeline` handle goes (the workers hold
/// only `Shared`).
struct Guard<H: Handler> {
    shared: Arc<Shared<H>>,
}

impl<H: Handler> Drop for Guard<H> {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// A submitted request's result, to be awaited. Dropping it cancels the
/// request: a request whose callers have all gone is not started.
///
/// A keyed request's ticket with a deadline also answers
/// [`PipelineError::DeadlineExceeded`] (stage
/// [`InFlight`](DeadlineStage::InFlight)) on its own when that deadline
/// passes, while the shared execution goes on for callers with a later one.
#[must_use = "a dropped ticket cancels its request"]
pub struct Ticket<T, E> {
    rx: oneshot::Receiver<Outcome<T, E>>,
    expiry: Option<Expiry>,
}

/// A single-flight caller's own deadline timer.
struct Expiry {
    sleep: Pin<Box<tokio::time::Sleep>>,
    counters: Arc<Counters>,
}

impl<T, E> Ticket<T, E> {
    /// A ticket that gives up at `deadline` if there is one (a keyed
    /// request's caller).
    fn with_deadline(
        rx: oneshot::Receiver<Outcome<T, E>>,
        deadline: Option<Instant>,
        now: Instant,
        counters: &Arc<Counters>,
    ) -> Self {
        let expiry = deadline.map(|d| Expiry {
            sleep: Box::pin(tokio::time::sleep(d.saturating_duration_since(now))),
            counters: Arc::clone(counters),
        });
        Self { rx, expiry }
    }
}

impl<T, E> Future for Ticket<T, E> {
    type Output = Result<T, PipelineError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(r) = Pin::new(&mut self.rx).poll(cx) {
            return Poll::Ready(r.unwrap_or(Err(PipelineError::Shutdown)));
        }
        if let Some(expiry) = &mut self.expiry
            && expiry.sleep.as_mut().poll(cx).is_ready()
        {
            expiry.counters.deadline_misses.fetch_add(1, Ordering::Relaxed);
            self.expiry = None;
            // Leave the flight now: a closed receiver no longer counts.
            self.rx.close();
            return Poll::Ready(Err(PipelineError::DeadlineExceeded {
                stage: DeadlineStage::InFlight,
            }));
        }
        Poll::Pending
    }
}

impl<T, E> fmt::Debug for Ticket<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket").finish_non_exhaustive()
    }
}

/// What [`Pipeline::shutdown`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether the queue and every running batch finished before the
    /// deadline.
    pub drained: bool,
    /// Requests still queued at the deadline, failed with
    /// [`PipelineError::Shutdown`].
    pub failed: usize,
}

type SubmitResult<H> =
    Result<Ticket<<H as Handler>::Response, <H as Handler>::Error>, PipelineError<<H as Handler>::Error>>;

impl<H: Handler> Pipeline<H> {
    /// A builder around `handler`; see [`PipelineBuilder`] for the defaults.
    pub fn builder(handler: H) -> PipelineBuilder<H> {
        PipelineBuilder::new(handler)
    }

    /// Queues a request, waiting for room if its priority's admission limit
    /// is reached (until its deadline, if it has one), and returns the
    /// [`Ticket`] to await. An identical keyed request already in flight is
    /// joined instead of queued.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Shutdown`], or
    /// [`PipelineError::DeadlineExceeded`] (stage `Admission`) when no room
    /// came before the deadline.
    pub async fn submit(&self, job: impl Into<Job<H::Request>>) -> SubmitResult<H> {
        let (mut item, ticket) = match self.prepare(job.into())? {
            Prepared::Joined(ticket) => return Ok(ticket),
            Prepared::New(item, ticket) => (item, ticket),
        };
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            self.shared.room_waiters.fetch_add(1, Ordering::AcqRel);
            match self.shared.admit(item) {
                Admitted::Queued => {
                    self.shared.room_waiters.fetch_sub(1, Ordering::AcqRel);
                    return Ok(ticket);
                }
                Admitted::Refused(back, _) => item = back,
                Admitted::Closed(back) => {
                    self.shared.room_waiters.fetch_sub(1, Ordering::AcqRel);
                    back.item.reply.send(Err(PipelineError::Shutdown));
                    return Err(PipelineError::Shutdown);
                }
            }
            let wait = item
                .item
                .deadline
                .map(|d| d.saturating_duration_since(self.shared.clock.now()));
            let timed_out = match wait {
                Some(w) => tokio::time::timeout(w, room).await.is_err(),
                None => {
                    room.await;
                    false
                }
            };
            self.shared.room_waiters.fetch_sub(1, Ordering::AcqRel);
            if self.shared.state() != State::Running {
                item.item.reply.send(Err(PipelineError::Shutdown));
                return Err(PipelineError::Shutdown);
            }
            if timed_out {
                let err = PipelineError::DeadlineExceeded {
                    stage: DeadlineStage::Admission,
                };
                self.shared
                    .counters
                    .deadline_misses
                    .fetch_add(1, Ordering::Relaxed);
                item.item.reply.send(Err(err.clone()));
                return Err(err);
            }
        }
    }

    /// Queues a request if there is room now; otherwise fails at once.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Shed`] with the reason when its priority's admission
    /// limit is reached and no less urgent request can be evicted,
    /// [`PipelineError::DeadlineExceeded`] when its deadline has passed, or
    /// [`PipelineError::Shutdown`].
    pub fn try_submit(&self, job: impl Into<Job<H::Request>>) -> SubmitResult<H> {
        let (item, ticket) = match self.prepare(job.into())? {
            Prepared::Joined(ticket) => return Ok(ticket),
            Prepared::New(item, ticket) => (item, ticket),
        };
        match self.shared.admit(item) {
            Admitted::Queued => Ok(ticket),
            Admitted::Closed(back) => {
                back.item.reply.send(Err(PipelineError::Shutdown));
                Err(PipelineError::Shutdown)
            }
            Admitted::Refused(back, reason) => {
                let err = PipelineError::Shed {
                    priority: back.priority,
                    reason,
                };
                self.shared.counters.shed[back.priority.index()].fetch_add(1, Ordering::Relaxed);
                // Callers who joined this flight meanwhile learn it too.
                back.item.reply.send(Err(err.clone()));
                Err(err)
            }
        }
    }

    /// [`submit`](Self::submit), then the result.
    ///
    /// # Errors
    ///
    /// Any [`PipelineError`].
    pub async fn call(
        &self,
        job: impl Into<Job<H::Request>>,
    ) -> Result<H::Response, PipelineError<H::Error>> {
        self.submit(job).await?.await
    }

    fn prepare(&self, job: Job<H::Request>) -> Result<Prepared<H>, PipelineError<H::Error>> {
        let shared = &*self.shared;
        if shared.state() != State::Running {
            return Err(PipelineError::Shutdown);
        }
        let now = shared.clock.now();
        let deadline = match (job.deadline, job.timeout) {
            (Some(d), Some(t)) => Some(d.min(now + t)),
            (d, t) => d.or_else(|| t.map(|t| now + t)),
        };
        let priority = job.priority;
        shared.counters.submitted[priority.index()].fetch_add(1, Ordering::Relaxed);
        if deadline.is_some_and(|d| d <= now) {
            shared.counters.deadline_misses.fetch_add(1, Ordering::Relaxed);
            return Err(PipelineError::DeadlineExceeded {
                stage: DeadlineStage::Admission,
            });
        }
        let (reply, ticket) = match job.key {
            None => {
                let (reply, rx) = Reply::one();
                (reply, Ticket { rx, expiry: None })
            }
            Some(key) => match shared.inflight.join(key.as_u128(), priority, deadline, now) {
                Joined::Existing { rx, raised } => {
                    shared.counters.dedup_hits.fetch_add(1, Ordering::Relaxed);
                    if let Some(flight) = raised {
                        shared.promote(&flight, priority);
                    }
                    let ticket = Ticket::with_deadline(rx, deadline, now, &shared.counters);
                    return Ok(Prepared::Joined(ticket));
                }
                Joined::New(reply, rx) => (reply, Ticket::with_deadline(rx, deadline, now, &shared.counters)),
            },
        };
        let request = job.request;
        let item = Queued {
            batch_key: shared.handler.batch_key(&request),
            item: Item {
                cost: shared.handler.cost(&request),
                request,
                deadline,
                reply,
            },
            priority,
            enqueued: now,
        };
        Ok(Prepared::New(item, ticket))
    }

    /// Stops taking requests, lets the workers drain the queue and finish
    /// running batches until `drain` has passed, then fails what is left
    /// with [`PipelineError::Shutdown`] and stops the workers.
    pub async fn shutdown(&self, drain: Duration) -> ShutdownReport {
        let shared = &*self.shared;
        shared.begin_drain();
        let done = tokio::time::timeout(drain, async {
            loop {
                let idle = shared.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if shared.is_drained() {
                    break;
                }
                idle.await;
            }
        })
        .await
        .is_ok();
        let failed = shared.stop();
        ShutdownReport {
            drained: done,
            failed,
        }
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> PipelineStats {
        self.shared.stats()
    }

    /// The endpoints with their breakers and health.
    #[must_use]
    pub fn balancer(&self) -> &Balancer {
        &self.shared.balancer
    }

    /// Requests queued now.
    #[must_use]
    pub fn queue_len(&self) -> usize {
        self.shared.lock_queue().len()
    }

    /// Workers running now.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.shared.workers.load(Ordering::Acquire)
    }

    /// The adaptive batch size now.
    #[must_use]
    pub fn batch_size(&self) -> usize {
        self.shared.batch_target.load(Ordering::Relaxed)
    }

    /// The pipeline's clock.
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        &self.shared.clock
    }
}

enum Prepared<H: Handler> {
    Joined(Ticket<H::Response, H::Error>),
    New(Queued<Item<H>>, Ticket<H::Response, H::Error>),
}

impl<H: Handler> fmt::Debug for Pipeline<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.shared.config.name)
            .field("queued", &self.queue_len())
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}

impl<H: Handler> StatsSource for Pipeline<H> {
    fn report_stats(&self, out: &mut StatsReport) {
        self.stats().report(&self.shared.config.name, out);
    }
}

pub(crate) fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
