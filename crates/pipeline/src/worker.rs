//! The engine room: shared state, the workers' loop, batch forming,
//! execution with retries, the autoscaler and the active health check.
//
// Flow of one batch (see docs/pipeline.md): a worker pops the next request
// (priority + aging), skips it if its callers left or its deadline passed,
// takes queued requests with the same batch key up to the adaptive size, and
// (unless urgent) lingers up to the adaptive wait for more. Then, per
// attempt: drop requests whose callers left, pick an endpoint (strategy,
// breaker, health), acquire every rate limit within the earliest deadline,
// call the handler under `catch_unwind`, record the outcome for the breaker
// and ejection, deliver per-request results, and retry what is retryable
// with brisk-core's backoff (honouring the error's retry-after) unless that
// would pass the deadline. Failures go through the handler's fallback.
//
// Locks: the queue mutex is never held across an await or while replying;
// replies (which may take the single-flight map's lock) happen outside it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use brisk_core::{Backoff, Priority, Retries, SharedClock};
use brisk_rate_limiter::{RateLimitError, RateLimiter};
use futures_util::FutureExt;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::balance::{Balancer, Endpoint};
use crate::error::{Classify, DeadlineStage, PipelineError};
use crate::flight::{Flight, Inflight, Reply};
use crate::handler::Handler;
use crate::pipeline::lock;
use crate::queue::{Admit, Queue, Queued};
use crate::stats::{Counters, PipelineStats};

pub(crate) type HealthFn = Arc<dyn Fn(Endpoint) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

pub(crate) type CostFn<R> = Box<dyn Fn(&[R]) -> u64 + Send + Sync>;

pub(crate) struct Limit<R> {
    pub(crate) limiter: RateLimiter,
    pub(crate) cost: CostFn<R>,
}

pub(crate) struct Config {
    pub(crate) name: String,
    pub(crate) min_workers: usize,
    pub(crate) max_workers: usize,
    pub(crate) min_batch: usize,
    pub(crate) max_batch: usize,
    pub(crate) max_batch_wait: Duration,
    pub(crate) latency_target: Duration,
    pub(crate) scale_interval: Duration,
    pub(crate) scale_up_depth: usize,
}

/// A queued request.
pub(crate) struct Item<H: Handler> {
    pub(crate) request: H::Request,
    pub(crate) deadline: Option<Instant>,
    pub(crate) reply: Reply<H::Response, H::Error>,
    pub(crate) cost: u64,
}

impl<H: Handler> Item<H> {
    /// The deadline it keeps: for a single-flight, the latest among its
    /// callers.
    fn deadline(&self) -> Option<Instant> {
        self.reply.deadline(self.deadline)
    }
}

/// A request being executed (its payload is in a parallel vector).
struct Meta<H: Handler> {
    priority: Priority,
    deadline: Option<Instant>,
    reply: Reply<H::Response, H::Error>,
    cost: u64,
    error: Option<H::Error>,
}

impl<H: Handler> Meta<H> {
    fn deadline(&self) -> Option<Instant> {
        self.reply.deadline(self.deadline)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    Running = 0,
    Draining = 1,
    Stopped = 2,
}

pub(crate) enum Admitted<H: Handler> {
    Queued,
    Refused(Queued<Item<H>>, crate::error::ShedReason),
    Closed(Queued<Item<H>>),
}

pub(crate) struct Shared<H: Handler> {
    pub(crate) handler: H,
    pub(crate) config: Config,
    queue: Mutex<Queue<Item<H>>>,
    pub(crate) inflight: Arc<Inflight<H::Response, H::Error>>,
    pub(crate) balancer: Balancer,
    backoff: Backoff,
    limits: Vec<Limit<H::Request>>,
    pub(crate) clock: SharedClock,
    runtime: tokio::runtime::Handle,
    pub(crate) counters: Arc<Counters>,
    pub(crate) batch_target: AtomicUsize,
    linger_nanos: AtomicU64,
    pub(crate) workers: AtomicUsize,
    busy: AtomicUsize,
    retire: AtomicUsize,
    state: AtomicU8,
    work: Notify,
    lingering: Notify,
    pub(crate) room: Notify,
    pub(crate) room_waiters: AtomicUsize,
    pub(crate) idle: Notify,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// Starts the minimum of workers, the autoscaler and the health check.
/// `health` is the active check's interval, per-check timeout and function.
pub(crate) fn start<H: Handler>(shared: &Arc<Shared<H>>, health: Option<(Duration, Duration, HealthFn)>) {
    for _ in 0..shared.config.min_workers {
        shared.spawn_worker();
    }
    if shared.config.max_workers > shared.config.min_workers {
        let s = Arc::clone(shared);
        let h = shared.runtime.spawn(async move { s.autoscale().await });
        lock(&shared.tasks).push(h.abort_handle());
    }
    if let Some((interval, timeout, check)) = health {
        let s = Arc::clone(shared);
        let h = shared
            .runtime
            .spawn(async move { s.health_loop(interval, timeout, check).await });
        lock(&shared.tasks).push(h.abort_handle());
    }
}

async fn worker_loop<H: Handler>(shared: Arc<Shared<H>>) {
    while let Some(batch) = shared.next_batch().await {
        // The handler's own panics are caught per call; this guards the
        // worker against one in `fallback` or `cost`: the batch's callers
        // get `Shutdown` (their replies are dropped) and the worker lives on.
        if AssertUnwindSafe(shared.run_batch(batch))
            .catch_unwind()
            .await
            .is_err()
        {
            shared.counters.panics.fetch_add(1, Ordering::Relaxed);
        }
        shared.end_busy();
    }
}

impl<H: Handler> Shared<H> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        handler: H,
        config: Config,
        queue: Queue<Item<H>>,
        balancer: Balancer,
        backoff: Backoff,
        limits: Vec<Limit<H::Request>>,
        clock: SharedClock,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            handler,
            batch_target: AtomicUsize::new(config.max_batch),
            linger_nanos: AtomicU64::new(nanos(config.max_batch_wait)),
            config,
            queue: Mutex::new(queue),
            inflight: Arc::new(Inflight::new()),
            balancer,
            backoff,
            limits,
            clock,
            runtime,
            counters: Arc::new(Counters::default()),
            workers: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            retire: AtomicUsize::new(0),
            state: AtomicU8::new(State::Running as u8),
            work: Notify::new(),
            lingering: Notify::new(),
            room: Notify::new(),
            room_waiters: AtomicUsize::new(0),
            idle: Notify::new(),
            tasks: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Running,
            1 => State::Draining,
            _ => State::Stopped,
        }
    }

    pub(crate) fn lock_queue(&self) -> MutexGuard<'_, Queue<Item<H>>> {
        lock(&self.queue)
    }

    fn spawn_worker(self: &Arc<Self>) {
        self.workers.fetch_add(1, Ordering::AcqRel);
        let h = self.runtime.spawn(worker_loop(Arc::clone(self)));
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(h.abort_handle());
    }

    /// Queues `q`, evicting a less urgent request if need be.
    pub(crate) fn admit(&self, mut q: Queued<Item<H>>) -> Admitted<H> {
        let key = q.batch_key;
        let (evicted, lingering, priority) = {
            let mut queue = self.lock_queue();
            if self.state() != State::Running {
                return Admitted::Closed(q);
            }
            // A more urgent caller may have joined this flight already (it
            // could not move it up: it was not queued yet).
            if let Some(p) = q.item.reply.priority(q.enqueued) {
                q.priority = q.priority.max(p);
            }
            let priority = q.priority;
            match queue.admit(q) {
                Admit::Queued { evicted } => (evicted, queue.is_forming(key), priority),
                Admit::Refused(q, reason) => return Admitted::Refused(q, reason),
            }
        };
        if lingering {
            self.lingering.notify_waiters();
        } else {
            self.work.notify_one();
        }
        if let Some(ev) = evicted {
            self.counters.shed[ev.priority.index()].fetch_add(1, Ordering::Relaxed);
            ev.item.reply.send(Err(PipelineError::Shed {
                priority: ev.priority,
                reason: crate::error::ShedReason::Evicted { by: priority },
            }));
        }
        Admitted::Queued
    }

    /// A more urgent caller joined `flight`: move its queued request up to
    /// `to` (if it is still queued; under the queue lock, so `admit` sees
    /// the raised priority otherwise).
    pub(crate) fn promote(&self, flight: &Arc<Flight<H::Response, H::Error>>, to: Priority) {
        let moved = self
            .lock_queue()
            .promote(to, |item: &Item<H>| item.reply.is_flight(flight));
        if moved {
            self.work.notify_one();
        }
    }

    pub(crate) fn begin_drain(&self) {
        let _ = self.state.compare_exchange(
            State::Running as u8,
            State::Draining as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.room.notify_waiters();
        self.work.notify_waiters();
    }

    pub(crate) fn is_drained(&self) -> bool {
        let queue = self.lock_queue();
        queue.len() == 0 && self.busy.load(Ordering::Acquire) == 0
    }

    /// Stops everything; fails what is queued with `Shutdown`. Returns how
    /// many requests that was.
    pub(crate) fn stop(&self) -> usize {
        let left = {
            let mut queue = self.lock_queue();
            self.state.store(State::Stopped as u8, Ordering::Release);
            queue.drain()
        };
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        let n = left.len();
        for q in left {
            q.item.reply.send(Err(PipelineError::Shutdown));
        }
        self.room.notify_waiters();
        self.work.notify_waiters();
        self.lingering.notify_waiters();
        n
    }

    fn end_busy(&self) {
        let queue = self.lock_queue();
        let busy = self.busy.fetch_sub(1, Ordering::AcqRel) - 1;
        if busy == 0 && queue.len() == 0 {
            drop(queue);
            self.idle.notify_waiters();
        }
    }

    fn room_freed(&self) {
        if self.room_waiters.load(Ordering::Acquire) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Under the queue lock: whether this worker should retire now.
    fn try_retire(&self) -> bool {
        let retire = self.retire.load(Ordering::Acquire);
        if retire == 0 {
            return false;
        }
        if self.workers.load(Ordering::Acquire) <= self.config.min_workers {
            self.retire.store(0, Ordering::Release);
            return false;
        }
        self.retire.store(retire - 1, Ordering::Release);
        self.workers.fetch_sub(1, Ordering::AcqRel);
        true
    }

    /// The next batch to run, or `None` when this worker should exit.
    async fn next_batch(&self) -> Option<Vec<Queued<Item<H>>>> {
        loop {
            let work = self.work.notified();
            tokio::pin!(work);
            work.as_mut().enable();
            let popped = {
                let mut queue = self.lock_queue();
                if self.state() == State::Stopped || self.try_retire() {
                    return None;
                }
                let popped = queue.pop(self.clock.now());
                if popped.is_some() {
                    self.busy.fetch_add(1, Ordering::AcqRel);
                    if queue.len() > 0 {
                        self.work.notify_one();
                    }
                }
                popped
            };
            let Some(first) = popped else {
                work.await;
                continue;
            };
            self.room_freed();
            if let Some(first) = self.alive(first) {
                return Some(self.fill_batch(first).await);
            }
            self.end_busy();
        }
    }

    /// `q` if it should still run; otherwise answers it (deadline) or drops
    /// it (callers gone).
    fn alive(&self, q: Queued<Item<H>>) -> Option<Queued<Item<H>>> {
        if q.item.reply.is_closed() {
            self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if q.item.deadline().is_some_and(|d| d <= self.clock.now()) {
            let callers = q.item.reply.callers() as u64;
            self.counters
                .deadline_misses
                .fetch_add(callers, Ordering::Relaxed);
            self.counters.failed.fetch_add(callers, Ordering::Relaxed);
            q.item.reply.send(Err(PipelineError::DeadlineExceeded {
                stage: DeadlineStage::Queued,
            }));
            return None;
        }
        Some(q)
    }

    fn take_more(&self, key: u64, target: usize, batch: &mut Vec<Queued<Item<H>>>) {
        if batch.len() >= target {
            return;
        }
        let mut taken = Vec::new();
        self.lock_queue().take_key(key, target - batch.len(), &mut taken);
        if !taken.is_empty() {
            self.room_freed();
        }
        batch.extend(taken.into_iter().filter_map(|q| self.alive(q)));
    }

    async fn fill_batch(&self, first: Queued<Item<H>>) -> Vec<Queued<Item<H>>> {
        let target = self.batch_target.load(Ordering::Relaxed);
        let mut batch = vec![first];
        if target <= 1 {
            return batch;
        }
        let key = batch[0].batch_key;
        self.take_more(key, target, &mut batch);
        let linger = Duration::from_nanos(self.linger_nanos.load(Ordering::Relaxed));
        if batch.len() >= target || batch[0].priority == Priority::Urgent || linger.is_zero() {
            return batch;
        }
        let oldest = batch
            .iter()
            .map(|q| q.enqueued)
            .min()
            .unwrap_or_else(|| self.clock.now());
        let deadline = batch.iter().filter_map(|q| q.item.deadline()).min();
        let until = deadline.map_or(oldest + linger, |d| d.min(oldest + linger));
        let now = self.clock.now();
        if now >= until {
            return batch;
        }
        self.lock_queue().start_forming(key);
        let sleep = tokio::time::sleep(until - now);
        tokio::pin!(sleep);
        loop {
            let more = self.lingering.notified();
            tokio::pin!(more);
            more.as_mut().enable();
            self.take_more(key, target, &mut batch);
            if batch.len() >= target || self.state() != State::Running {
                break;
            }
            tokio::select! {
                () = &mut sleep => {
                    self.take_more(key, target, &mut batch);
                    break;
                }
                () = &mut more => {}
            }
        }
        let mut queue = self.lock_queue();
        queue.stop_forming(key);
        if queue.len() > 0 {
            self.work.notify_one();
        }
        batch
    }

    async fn run_batch(&self, batch: Vec<Queued<Item<H>>>) {
        let now = self.clock.now();
        let key = batch[0].batch_key;
        self.counters.record_batch(batch.len());
        let mut reqs = Vec::with_capacity(batch.len());
        let mut metas: Vec<Meta<H>> = Vec::with_capacity(batch.len());
        for q in batch {
            self.counters
                .record_wait(q.priority, now.saturating_duration_since(q.enqueued));
            reqs.push(q.item.request);
            metas.push(Meta {
                priority: q.priority,
                deadline: q.item.deadline,
                reply: q.item.reply,
                cost: q.item.cost,
                error: None,
            });
        }
        let mut retries = self.backoff.retries();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            self.prune(&mut reqs, &mut metas, attempts);
            if reqs.is_empty() {
                return;
            }
            let deadline = metas.iter().filter_map(Meta::deadline).min();
            let pick = match self.balancer.pick(key) {
                Ok(pick) => pick,
                Err(retry_after) => {
                    return self.fail_all(reqs, metas, &PipelineError::Unavailable { retry_after });
                }
            };
            if let Err(e) = self.acquire(&reqs, deadline).await {
                drop(pick);
                let err = match e {
                    RateLimitError::DeadlineExceeded { .. } => PipelineError::DeadlineExceeded {
                        stage: DeadlineStage::RateLimit,
                    },
                    e => PipelineError::RateLimited(e),
                };
                return self.fail_all(reqs, metas, &err);
            }
            for m in &metas {
                self.counters.cost[m.priority.index()].fetch_add(m.cost, Ordering::Relaxed);
                pick.add_cost(m.cost);
            }
            let started = self.clock.now();
            let result = AssertUnwindSafe(self.handler.call(pick.endpoint(), &reqs))
                .catch_unwind()
                .await;
            let took = self.clock.elapsed(started);
            self.counters.record_exec(took);
            let endpoint = pick.endpoint().name().to_owned();
            match result {
                Err(panic) => {
                    drop(pick);
                    self.counters.panics.fetch_add(1, Ordering::Relaxed);
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(not a string)".to_owned());
                    return self.fail_all(reqs, metas, &PipelineError::Panicked { message });
                }
                Ok(Err(error)) => {
                    pick.finish(false);
                    if error.is_retryable()
                        && let Some(delay) = self.retry_delay(&mut retries, error.retry_after(), deadline)
                    {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    let err = PipelineError::Upstream {
                        error,
                        attempts,
                        endpoint,
                    };
                    return self.fail_all(reqs, metas, &err);
                }
                Ok(Ok(results)) => {
                    pick.finish(true);
                    if results.len() != reqs.len() {
                        let err = PipelineError::WrongResultCount {
                            expected: reqs.len(),
                            got: results.len(),
                        };
                        return self.fail_all(reqs, metas, &err);
                    }
                    self.adapt(took, reqs.len());
                    let mut again = (Vec::new(), Vec::new());
                    let mut hint: Option<Duration> = None;
                    for ((req, mut meta), result) in reqs.into_iter().zip(metas).zip(results) {
                        match result {
                            Ok(value) => {
                                self.counters
                                    .completed
                                    .fetch_add(meta.reply.callers() as u64, Ordering::Relaxed);
                                meta.reply.send(Ok(value));
                            }
                            Err(error) if error.is_retryable() => {
                                hint = hint.max(error.retry_after());
                                meta.error = Some(error);
                                again.0.push(req);
                                again.1.push(meta);
                            }
                            Err(error) => {
                                let err = PipelineError::Upstream {
                                    error,
                                    attempts,
                                    endpoint: endpoint.clone(),
                                };
                                self.fail(&req, meta, err);
                            }
                        }
                    }
                    (reqs, metas) = again;
                    if reqs.is_empty() {
                        return;
                    }
                    let deadline = metas.iter().filter_map(Meta::deadline).min();
                    if let Some(delay) = self.retry_delay(&mut retries, hint, deadline) {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    for (req, mut meta) in reqs.into_iter().zip(metas) {
                        if let Some(error) = meta.error.take() {
                            let err = PipelineError::Upstream {
                                error,
                                attempts,
                                endpoint: endpoint.clone(),
                            };
                            self.fail(&req, meta, err);
                        }
                    }
                    return;
                }
            }
        }
    }

    /// Drops requests whose callers left and fails those past their deadline.
    fn prune(&self, reqs: &mut Vec<H::Request>, metas: &mut Vec<Meta<H>>, attempt: u32) {
        let now = if metas.iter().any(|m| m.deadline().is_some()) {
            self.clock.now()
        } else {
            // No deadline to compare with: skip the clock read.
            Instant::now()
        };
        let keep = |m: &Meta<H>| !m.reply.is_closed() && m.deadline().is_none_or(|d| d > now);
        if metas.iter().all(keep) {
            return;
        }
        let stage = if attempt == 1 {
            DeadlineStage::Queued
        } else {
            DeadlineStage::Retry
        };
        let old = std::mem::take(metas);
        let old_reqs = std::mem::take(reqs);
        for (req, meta) in old_reqs.into_iter().zip(old) {
            if keep(&meta) {
                reqs.push(req);
                metas.push(meta);
            } else if meta.reply.is_closed() {
                self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
            } else {
                self.fail(&req, meta, PipelineError::DeadlineExceeded { stage });
            }
        }
    }

    fn retry_delay(
        &self,
        retries: &mut Retries,
        hint: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        let delay = retries.next_delay_after(hint)?;
        if deadline.is_some_and(|d| self.clock.now() + delay > d) {
            return None;
        }
        Some(delay)
    }

    async fn acquire(&self, reqs: &[H::Request], deadline: Option<Instant>) -> Result<(), RateLimitError> {
        let mut taken: Vec<(usize, u64)> = Vec::new();
        for (i, limit) in self.limits.iter().enumerate() {
            let cost = (limit.cost)(reqs);
            if cost == 0 {
                continue;
            }
            let res = match deadline {
                Some(d) => limit.limiter.acquire_until(cost, d).await,
                None => limit.limiter.acquire(cost).await,
            };
            if let Err(e) = res {
                for (j, c) in taken {
                    self.limits[j].limiter.refund(c);
                }
                return Err(e);
            }
            taken.push((i, cost));
        }
        Ok(())
    }

    /// Additive increase, multiplicative decrease of the batch size and
    /// wait, by the latency of the last call.
    fn adapt(&self, took: Duration, items: usize) {
        let c = &self.config;
        if c.max_batch == 1 {
            return;
        }
        let target = self.batch_target.load(Ordering::Relaxed);
        let linger = self.linger_nanos.load(Ordering::Relaxed);
        let max_linger = nanos(c.max_batch_wait);
        if took <= c.latency_target {
            if items >= target && target < c.max_batch {
                let grown = (target + (target / 8).max(1)).min(c.max_batch);
                self.batch_target.store(grown, Ordering::Relaxed);
            }
            let grown = (linger + (max_linger / 8).max(1)).min(max_linger);
            self.linger_nanos.store(grown, Ordering::Relaxed);
        } else {
            self.batch_target
                .store((target * 3 / 4).max(c.min_batch), Ordering::Relaxed);
            self.linger_nanos.store(linger / 2, Ordering::Relaxed);
        }
    }

    fn fail_all(&self, reqs: Vec<H::Request>, metas: Vec<Meta<H>>, err: &PipelineError<H::Error>) {
        for (req, meta) in reqs.into_iter().zip(metas) {
            self.fail(&req, meta, err.clone());
        }
    }

    /// Answers a failed request: the handler's fallback if it gives one,
    /// else the error.
    fn fail(&self, req: &H::Request, meta: Meta<H>, err: PipelineError<H::Error>) {
        let callers = meta.reply.callers() as u64;
        if err.allows_fallback()
            && let Some(value) = self.handler.fallback(req, &err)
        {
            self.counters.fallbacks.fetch_add(callers, Ordering::Relaxed);
            meta.reply.send(Ok(value));
            return;
        }
        if matches!(err, PipelineError::DeadlineExceeded { .. }) {
            self.counters
                .deadline_misses
                .fetch_add(callers, Ordering::Relaxed);
        }
        self.counters.failed.fetch_add(callers, Ordering::Relaxed);
        meta.reply.send(Err(err));
    }

    async fn autoscale(self: Arc<Self>) {
        let c = &self.config;
        let mut interval = tokio::time::interval(c.scale_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut up, mut down) = (0u32, 0u32);
        loop {
            interval.tick().await;
            if self.state() == State::Stopped {
                return;
            }
            let now = self.clock.now();
            let (depth, oldest) = {
                let queue = self.lock_queue();
                (queue.len(), queue.oldest())
            };
            let workers = self.workers.load(Ordering::Acquire);
            let busy = self.busy.load(Ordering::Acquire);
            let waited = oldest.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            if depth > workers * c.scale_up_depth || waited > c.latency_target {
                up += 1;
                down = 0;
            } else if depth == 0 && busy < workers {
                down += 1;
                up = 0;
            } else {
                up = 0;
                down = 0;
            }
            if up >= 2 && workers < c.max_workers {
                let wanted = depth.div_ceil(c.scale_up_depth).max(workers + 1);
                for _ in workers..wanted.min(c.max_workers) {
                    self.spawn_worker();
                }
                up = 0;
            }
            if down >= 20 && workers > c.min_workers {
                self.retire.fetch_add(1, Ordering::AcqRel);
                self.work.notify_one();
                down = 0;
            }
        }
    }

    async fn health_loop(self: Arc<Self>, every: Duration, timeout: Duration, check: HealthFn) {
        let endpoints: Vec<Endpoint> = self.balancer.endpoints().cloned().collect();
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            for (i, ep) in endpoints.iter().enumerate() {
                // A check that hangs is a failure, and must not stall the
                // round for the other endpoints.
                let healthy = tokio::time::timeout(timeout, check(ep.clone()))
                    .await
                    .unwrap_or(false);
                self.balancer.set_healthy(i, healthy);
            }
        }
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        let depths = self.lock_queue().depths();
        self.counters.snapshot(
            depths,
            self.workers.load(Ordering::Relaxed),
            self.busy.load(Ordering::Relaxed),
            self.batch_target.load(Ordering::Relaxed),
            Duration::from_nanos(self.linger_nanos.load(Ordering::Relaxed)),
            self.inflight.len(),
            self.balancer.stats(),
        )
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
