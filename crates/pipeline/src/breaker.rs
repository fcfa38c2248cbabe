//! A circuit breaker: closed, open and half-open, with a failure-rate and a
//! minimum-request threshold over a window of the latest calls.
//
// Design: a count-based window (the last `window` outcomes in a ring) rather
// than a time-based one: it needs no clock reads on the hot path and judges an
// upstream by the same number of calls whether traffic is light or heavy;
// `min_requests` keeps two failures out of three from opening it at start-up.
// Time is read only to leave the open state, through the injected clock, so
// tests advance a `ManualClock` through the whole cycle.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use brisk_core::{ConfigError, SharedClock};

/// The state of a [`CircuitBreaker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass; outcomes are counted.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// The open period ended: a few probe calls pass; if they succeed the
    /// breaker closes, if one fails it opens again.
    HalfOpen,
}

impl BreakerState {
    /// `"closed"`, `"open"` or `"half_open"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A circuit breaker's settings. Each setter's docs give its default.
///
/// ```
/// use std::time::Duration;
/// use brisk_pipeline::BreakerConfig;
///
/// let config = BreakerConfig::default()
///     .failure_rate(0.5)
///     .min_requests(10)
///     .window(50)
///     .open_for(Duration::from_secs(30));
/// assert_eq!(config.validate("breaker"), Ok(()));
/// assert_eq!(BreakerConfig::default().window(0).validate("breaker").unwrap_err().field(), "breaker.window");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct BreakerConfig {
    failure_rate: f64,
    min_requests: u32,
    window: u32,
    open_for: Duration,
    half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate: 0.5,
            min_requests: 20,
            window: 100,
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

impl BreakerConfig {
    /// The share of failed calls in the window at which the breaker opens.
    /// Default 0.5; must be in `(0, 1]`.
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = rate;
        self
    }

    /// Calls the window must hold before the rate is judged. Default 20;
    /// must be at least 1 and at most `window`.
    pub fn min_requests(mut self, n: u32) -> Self {
        self.min_requests = n;
        self
    }

    /// How many of the latest calls are judged. Default 100; at least 1.
    pub fn window(mut self, n: u32) -> Self {
        self.window = n;
        self
    }

    /// How long the breaker stays open before it lets probes through.
    /// Default 30 s; greater than zero.
    pub fn open_for(mut self, d: Duration) -> Self {
        self.open_for = d;
        self
    }

    /// Probe calls let through while half-open; all must succeed to close.
    /// Default 1; at least 1.
    pub fn half_open_probes(mut self, n: u32) -> Self {
        self.half_open_probes = n;
        self
    }

    /// Checks the values; errors name `<prefix>.<field>`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first value out of range.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let field = |f: &str| format!("{prefix}.{f}");
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err(ConfigError::new(
                field("failure_rate"),
                format!("must be in (0, 1], got {}", self.failure_rate),
            ));
        }
        if self.window == 0 {
            return Err(ConfigError::new(field("window"), "must be at least 1"));
        }
        if self.min_requests == 0 || self.min_requests > self.window {
            return Err(ConfigError::new(
                field("min_requests"),
                format!(
                    "must be in 1..={} (the window), got {}",
                    self.window, self.min_requests
                ),
            ));
        }
        if self.open_for.is_zero() {
            return Err(ConfigError::new(field("open_for"), "must be greater than zero"));
        }
        if self.half_open_probes == 0 {
            return Err(ConfigError::new(field("half_open_probes"), "must be at least 1"));
        }
        Ok(())
    }
}

/// A circuit breaker for one upstream. The pipeline keeps one per endpoint;
/// it is public so that other code can use the same one.
///
/// ```
/// use std::time::Duration;
/// use brisk_core::ManualClock;
/// use brisk_pipeline::{BreakerConfig, BreakerState, CircuitBreaker};
///
/// let clock = ManualClock::new();
/// let config = BreakerConfig::default().min_requests(4).window(4).open_for(Duration::from_secs(10));
/// let breaker = CircuitBreaker::new(config, clock.shared())?;
/// for ok in [true, false, false, true] {
///     breaker.try_acquire().unwrap();
///     breaker.record(ok);
/// }
/// assert_eq!(breaker.state(), BreakerState::Open); // 2 of 4 failed: 50 %
/// assert_eq!(breaker.try_acquire(), Err(Duration::from_secs(10)));
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(breaker.state(), BreakerState::HalfOpen);
/// breaker.try_acquire().unwrap(); // the probe
/// breaker.record(true);
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CircuitBreaker {
    config: BreakerConfig,
    // Mirrors `state == Closed`, so that the common case (closed) lets a
    // call through without the lock or a clock read.
    closed: AtomicBool,
    clock: SharedClock,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    outcomes: VecDeque<bool>,
    failures: u32,
    opened: u64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, succeeded: u32 },
}

impl CircuitBreaker {
    /// A closed breaker.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `breaker.<field>` when `config` is invalid.
    pub fn new(config: BreakerConfig, clock: SharedClock) -> Result<Self, ConfigError> {
        config.validate("breaker")?;
        Ok(Self {
            closed: AtomicBool::new(true),
            inner: Mutex::new(Inner {
                state: State::Closed,
                outcomes: VecDeque::with_capacity(config.window as usize),
                failures: 0,
                opened: 0,
            }),
            config,
            clock,
        })
    }

    /// The state now (an open breaker whose period ended reads half-open).
    #[must_use]
    pub fn state(&self) -> BreakerState {
        let now = self.clock.now();
        match self.lock().state {
            State::Closed => BreakerState::Closed,
            State::Open { until } if now < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// How many times it has opened.
    #[must_use]
    pub fn times_opened(&self) -> u64 {
        self.lock().opened
    }

    /// Asks to make a call. Closed: yes. Open: no, with how long until it
    /// lets probes through. Half-open: yes while fewer than
    /// `half_open_probes` probes are in flight. Every `Ok` must be followed
    /// by one [`record`](Self::record).
    ///
    /// # Errors
    ///
    /// The time until the breaker lets a call through, when it refuses now
    /// (zero while half-open probes are all in flight).
    pub fn try_acquire(&self) -> Result<(), Duration> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let now = self.clock.now();
        let mut inner = self.lock();
        match inner.state {
            State::Closed => Ok(()),
            State::Open { until } if now < until => Err(until - now),
            State::Open { .. } => {
                inner.state = State::HalfOpen {
                    in_flight: 1,
                    succeeded: 0,
                };
                Ok(())
            }
            State::HalfOpen { in_flight, succeeded } => {
                if in_flight + succeeded < self.config.half_open_probes {
                    inner.state = State::HalfOpen {
                        in_flight: in_flight + 1,
                        succeeded,
                    };
                    Ok(())
                } else {
                    Err(Duration::ZERO)
                }
            }
        }
    }

    /// Whether [`try_acquire`](Self::try_acquire) would let a call through
    /// now, without asking; `Err` holds the wait.
    pub(crate) fn would_allow(&self) -> Result<(), Duration> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let now = self.clock.now();
        match self.lock().state {
            State::Open { until } if now < until => Err(until - now),
            State::Closed | State::Open { .. } => Ok(()),
            State::HalfOpen { in_flight, succeeded } => {
                if in_flight + succeeded < self.config.half_open_probes {
                    Ok(())
                } else {
                    Err(Duration::ZERO)
                }
            }
        }
    }

    /// Records the outcome of a call let through by
    /// [`try_acquire`](Self::try_acquire).
    pub fn record(&self, success: bool) {
        let now = self.clock.now();
        let mut inner = self.lock();
        match inner.state {
            State::Closed => {
                if inner.outcomes.len() == self.config.window as usize
                    && inner.outcomes.pop_front() == Some(false)
                {
                    inner.failures -= 1;
                }
                inner.outcomes.push_back(success);
                if !success {
                    inner.failures += 1;
                }
                let total = u32::try_from(inner.outcomes.len()).unwrap_or(u32::MAX);
                if total >= self.config.min_requests
                    && f64::from(inner.failures) >= self.config.failure_rate * f64::from(total)
                {
                    self.open(&mut inner, now);
                }
            }
            // A call let through before the breaker opened: no news.
            State::Open { .. } => {}
            State::HalfOpen { in_flight, succeeded } => {
                if !success {
                    self.open(&mut inner, now);
                } else if succeeded + 1 >= self.config.half_open_probes {
                    inner.state = State::Closed;
                    self.closed.store(true, Ordering::Release);
                    inner.outcomes.clear();
                    inner.failures = 0;
                } else {
                    inner.state = State::HalfOpen {
                        in_flight: in_flight.saturating_sub(1),
                        succeeded: succeeded + 1,
                    };
                }
            }
        }
    }

    /// Gives back a call let through by `try_acquire` that ended without an
    /// outcome (cancelled, or a panic that says nothing of the upstream).
    pub(crate) fn release(&self) {
        let mut inner = self.lock();
        if let State::HalfOpen { in_flight, succeeded } = inner.state {
            inner.state = State::HalfOpen {
                in_flight: in_flight.saturating_sub(1),
                succeeded,
            };
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        self.closed.store(false, Ordering::Release);
        inner.state = State::Open {
            until: now + self.config.open_for,
        };
        inner.outcomes.clear();
        inner.failures = 0;
        inner.opened += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
