//! The open-loop engine: workers send each request at its due time and
//! record its latency from that time.
//
// Design: a shared counter hands out request numbers in order; the worker
// that takes number i waits until i's due time (from the schedule), sends
// it on its own connection and records `done - due`. With every worker
// busy, due times pass unattended and the next free worker sends at once:
// the wait is part of the latency, as a user arriving then would see it.
// (A worker that was idle and woke late by the timer's 1 ms tick counts
// from its actual send: that lateness is the client's, not a queue.)
// That is the coordinated-omission correction: a server stall of 500 ms at
// 200 requests/s shows up as ~100 slow requests, not one. The time from the
// actual send (the "service time", what a closed-loop client measures) is
// recorded beside it.
//
// One mutex guards all the histograms: a lock per request costs tens of
// nanoseconds, far below a loopback HTTP round trip, and keeps the
// per-window histograms in one place (64 workers x 600 windows of private
// histograms would take hundreds of MB).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::Full;
use tokio::sync::watch;

use crate::client::{Conn, Outcome};
use crate::metrics::{self, ServerSample};
use crate::{Mix, Schedule, Target};

/// Latencies are recorded in microseconds, up to one hour.
const MAX_MICROS: u64 = 3_600_000_000;

pub(crate) fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, sigfig).expect("valid histogram bounds")
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_MICROS)
}

/// Stops a run early (Ctrl-C, or a test): the run ends at once and its
/// report covers what completed, marked partial.
///
/// ```
/// use brisk_load::StopSignal;
///
/// let stop = StopSignal::new();
/// assert!(!stop.is_stopped());
/// stop.stop();
/// assert!(stop.is_stopped());
/// ```
#[derive(Clone, Debug)]
pub struct StopSignal {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl StopSignal {
    /// A signal that has not fired.
    #[must_use]
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Fires the signal.
    pub fn stop(&self) {
        self.tx.send_replace(true);
    }

    /// Whether it has fired.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes when it fires.
    pub async fn stopped(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// What the engine needs beyond the schedule.
#[derive(Clone, Debug)]
pub(crate) struct EngineConfig {
    pub(crate) target: Target,
    pub(crate) mix: Arc<Mix>,
    pub(crate) connections: usize,
    pub(crate) timeout: Duration,
    pub(crate) window: Duration,
    pub(crate) max_time: Duration,
    pub(crate) stop: StopSignal,
    pub(crate) metrics_path: Option<String>,
    pub(crate) seed: u64,
}

pub(crate) struct PhaseAcc {
    pub(crate) latency: Histogram<u64>,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) last_done: Duration,
}

pub(crate) struct WindowAcc {
    /// Latency of the requests due in this window.
    pub(crate) latency: Histogram<u64>,
    /// Requests that completed in this window.
    pub(crate) completed: u64,
    /// Of those, the failed ones.
    pub(crate) errors: u64,
}

/// Everything one engine run measured.
pub(crate) struct RunData {
    /// Latency from the due time (corrected), microseconds.
    pub(crate) latency: Histogram<u64>,
    /// Latency from the actual send (service time), microseconds.
    pub(crate) service: Histogram<u64>,
    pub(crate) phases: Vec<PhaseAcc>,
    pub(crate) windows: Vec<WindowAcc>,
    pub(crate) statuses: BTreeMap<String, u64>,
    pub(crate) by_request: BTreeMap<String, (u64, u64)>,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    /// From the start to the last completion.
    pub(crate) elapsed: Duration,
    pub(crate) window: Duration,
    pub(crate) planned: u64,
    pub(crate) stopped: bool,
    pub(crate) timed_out: bool,
    pub(crate) server: Option<Vec<ServerSample>>,
}

impl RunData {
    fn new(phases: usize, window: Duration, planned: u64) -> Self {
        Self {
            latency: histogram(3),
            service: histogram(3),
            phases: (0..phases)
                .map(|_| PhaseAcc {
                    latency: histogram(3),
                    ok: 0,
                    errors: 0,
                    last_done: Duration::ZERO,
                })
                .collect(),
            windows: Vec::new(),
            statuses: BTreeMap::new(),
            by_request: BTreeMap::new(),
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            window,
            planned,
            stopped: false,
            timed_out: false,
            server: None,
        }
    }

    fn window_mut(&mut self, at: Duration) -> &mut WindowAcc {
        let i = usize::try_from(at.as_nanos() / self.window.as_nanos().max(1)).unwrap_or(usize::MAX);
        let i = i.min(1_000_000);
        while self.windows.len() <= i {
            self.windows.push(WindowAcc {
                latency: histogram(2),
                completed: 0,
                errors: 0,
            });
        }
        &mut self.windows[i]
    }

    fn record(&mut self, name: &str, t: Timing, done: Duration, outcome: Outcome) {
        let Timing {
            phase,
            due,
            from,
            sent,
        } = t;
        let latency = micros(done.saturating_sub(from));
        let ok = outcome.is_ok();
        self.latency.saturating_record(latency);
        self.service.saturating_record(micros(done.saturating_sub(sent)));
        let p = &mut self.phases[phase];
        p.latency.saturating_record(latency);
        p.last_done = p.last_done.max(done);
        let entry = self.by_request.entry(name.to_owned()).or_default();
        entry.0 += 1;
        if ok {
            p.ok += 1;
            self.ok += 1;
        } else {
            p.errors += 1;
            self.errors += 1;
            entry.1 += 1;
        }
        *self.statuses.entry(outcome.label()).or_default() += 1;
        self.window_mut(due).latency.saturating_record(latency);
        let w = self.window_mut(done);
        w.completed += 1;
        if !ok {
            w.errors += 1;
        }
        self.elapsed = self.elapsed.max(done);
    }

    /// Requests that completed (successfully or not).
    pub(crate) fn completed(&self) -> u64 {
        self.ok + self.errors
    }
}

struct Shared {
    cfg: EngineConfig,
    schedule: Schedule,
    next: AtomicU64,
    start: Instant,
    past_max_time: AtomicBool,
    data: Mutex<RunData>,
}

/// Runs `schedule` against the target and returns what it measured.
pub(crate) async fn run(cfg: EngineConfig, schedule: Schedule) -> RunData {
    let data = RunData::new(schedule.phases().len(), cfg.window, schedule.total());
    let connections = cfg.connections.max(1);
    let shared = Arc::new(Shared {
        cfg,
        schedule,
        next: AtomicU64::new(0),
        start: Instant::now(),
        past_max_time: AtomicBool::new(false),
        data: Mutex::new(data),
    });
    // A run-local stop: fired by the caller's signal or by the time cap.
    let local = StopSignal::new();
    let watcher = {
        let (outer, local, shared) = (shared.cfg.stop.clone(), local.clone(), Arc::clone(&shared));
        tokio::spawn(async move {
            let deadline = tokio::time::sleep_until((shared.start + shared.cfg.max_time).into());
            tokio::select! {
                () = outer.stopped() => {}
                () = deadline => shared.past_max_time.store(true, Ordering::Relaxed),
            }
            local.stop();
        })
    };
    let sampler = shared.cfg.metrics_path.clone().map(|path| {
        let (target, local, start) = (shared.cfg.target.clone(), local.clone(), shared.start);
        let every = shared
            .cfg
            .window
            .clamp(Duration::from_secs(1), Duration::from_secs(10));
        tokio::spawn(async move { metrics::sample(target, path, every, start, local).await })
    });
    let mut workers = tokio::task::JoinSet::new();
    for id in 0..connections {
        workers.spawn(worker(Arc::clone(&shared), local.clone(), id as u64));
    }
    while workers.join_next().await.is_some() {}
    let stopped = shared.cfg.stop.is_stopped();
    local.stop();
    watcher.abort();
    let server = match sampler {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    let mut data = std::mem::replace(
        &mut *shared
            .data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        RunData::new(0, Duration::from_secs(1), 0),
    );
    data.stopped = stopped;
    data.timed_out = shared.past_max_time.load(Ordering::Relaxed);
    data.server = server;
    data
}

async fn worker(shared: Arc<Shared>, stop: StopSignal, id: u64) {
    let mut rng = fastrand::Rng::with_seed(shared.cfg.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut conn: Option<Conn> = None;
    let total = shared.schedule.total();
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= total || stop.is_stopped() {
            break;
        }
        let (phase, due) = shared.schedule.due(i);
        if due >= shared.cfg.max_time {
            shared.past_max_time.store(true, Ordering::Relaxed);
            break;
        }
        let due_at = shared.start + due;
        // A worker that waits for the due time is free: if the timer wakes
        // it late (tokio's timer has a 1 ms tick), that lateness is the
        // client's, not a queue, so latency counts from the actual send. A
        // worker that takes a request already due was busy: the wait was
        // caused by slow responses and counts (the correction).
        let waited = due_at > Instant::now();
        if waited {
            tokio::select! {
                () = tokio::time::sleep_until(due_at.into()) => {}
                () = stop.stopped() => break,
            }
        }
        let spec = shared.cfg.mix.pick(&mut rng);
        let (path, body) = spec.render(i, &mut rng);
        let Some(req) = build(&shared.cfg.target, spec, &path, body) else {
            let t = Timing {
                phase,
                due,
                from: due,
                sent: due,
            };
            record(&shared, spec.name(), t, Outcome::Invalid);
            continue;
        };
        let sent = shared.start.elapsed();
        let from = if waited { sent.max(due) } else { due };
        let outcome = tokio::select! {
            r = tokio::time::timeout(shared.cfg.timeout, attempt(&mut conn, shared.cfg.target.addr(), req)) => {
                r.unwrap_or(Outcome::Timeout)
            }
            () = stop.stopped() => break,
        };
        if outcome == Outcome::Timeout {
            conn = None;
        }
        record(
            &shared,
            spec.name(),
            Timing {
                phase,
                due,
                from,
                sent,
            },
            outcome,
        );
    }
}

/// When one request was due, when its latency counts from, and when it
/// was sent (offsets from the start of the run), and its phase.
#[derive(Clone, Copy)]
pub(crate) struct Timing {
    phase: usize,
    due: Duration,
    from: Duration,
    sent: Duration,
}

fn record(shared: &Shared, name: &str, t: Timing, outcome: Outcome) {
    let done = shared.start.elapsed();
    shared
        .data
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .record(name, t, done, outcome);
}

fn build(
    target: &Target,
    spec: &crate::RequestSpec,
    path: &str,
    body: Bytes,
) -> Option<http::Request<Full<Bytes>>> {
    let mut b = http::Request::builder()
        .method(spec.method().clone())
        .uri(format!("{}{path}", target.base_path()))
        .header(http::header::HOST, target.authority());
    for (k, v) in spec.headers() {
        b = b.header(k, v);
    }
    b.body(Full::new(body)).ok()
}

async fn attempt(
    conn: &mut Option<Conn>,
    addr: std::net::SocketAddr,
    req: http::Request<Full<Bytes>>,
) -> Outcome {
    // A connection the server closed after its last response is replaced
    // before this request goes out, so the close is not counted as an error.
    if let Some(c) = conn.as_mut()
        && !c.ready().await
    {
        *conn = None;
    }
    if conn.is_none() {
        match Conn::open(addr).await {
            Ok(c) => *conn = Some(c),
            Err(_) => return Outcome::Connect,
        }
    }
    let Some(c) = conn.as_mut() else {
        return Outcome::Connect;
    };
    match c.send(req).await {
        Ok((status, _)) => Outcome::Status(status),
        Err(()) => {
            *conn = None;
            Outcome::Io
        }
    }
}
