//! Choosing an upstream endpoint: five strategies, a circuit breaker per
//! endpoint, passive ejection after consecutive failures and active health
//! marks.
//
// Design notes:
// - Weighted is nginx's "smooth weighted round robin": each pick adds every
//   endpoint's weight to its running score, takes the highest and subtracts
//   the total from it. Weights 5:1:1 give a a b a c a a, not a a a a a b c,
//   so a heavy endpoint never gets a burst.
// - Consistent hash is rendezvous hashing (highest random weight, weighted
//   as score = weight / -ln(u)): no ring to rebuild, and when an endpoint
//   leaves only its keys move. A key maps to the same endpoint on every
//   process that has the same endpoint names.
// - Power of two choices (Mitzenmacher) picks two endpoints at random and
//   takes the one with fewer outstanding requests: nearly as good as least
//   outstanding without every picker herding onto the same idle endpoint.
// - An endpoint is a candidate when it is not ejected, not marked unhealthy
//   by the active check, and its breaker would let a call through.
// - Ejection is capped as in Envoy's outlier detection
//   (`max_ejection_percent`): at most that share of the endpoints (but at
//   least one) is ejected at once, so a fault that makes every endpoint
//   fail (a bad request, a broken dependency of the caller) cannot empty
//   the pool. An endpoint over its failure threshold while the cap is
//   reached stays in, keeps its failure count, and is ejected at its next
//   failure once there is room. The count and the ejection happen under one
//   lock (failure path only) so that concurrent failures cannot pass the
//   cap together.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use brisk_core::{ConfigError, ContentHash, SharedClock};

use crate::breaker::{BreakerConfig, BreakerState, CircuitBreaker};

/// One upstream endpoint: a name the handler uses to reach it (a base URL,
/// a host:port, a model name) and a weight for [`Strategy::Weighted`] and
/// [`Strategy::ConsistentHash`].
///
/// ```
/// use brisk_pipeline::Endpoint;
///
/// let ep = Endpoint::new("http://10.0.0.7:8080").weight(3);
/// assert_eq!((ep.name(), ep.weight_value()), ("http://10.0.0.7:8080", 3));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    name: Arc<str>,
    weight: u32,
}

impl Endpoint {
    /// An endpoint of weight 1.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            weight: 1,
        }
    }

    /// Sets the weight. Default 1; must be at least 1.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// The name given to [`new`](Self::new).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The weight.
    #[must_use]
    pub fn weight_value(&self) -> u32 {
        self.weight
    }
}

/// How the next endpoint is chosen among those available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// Each endpoint in turn.
    #[default]
    RoundRobin,
    /// In proportion to the weights, smoothly interleaved.
    Weighted,
    /// The endpoint with the fewest requests in flight.
    LeastOutstanding,
    /// Two endpoints at random; the one with fewer requests in flight.
    PowerOfTwo,
    /// By the batch key (rendezvous hashing, weighted): the same key goes to
    /// the same endpoint while that endpoint is available.
    ConsistentHash,
}

/// Passive health: eject an endpoint after consecutive failures, for a
/// while, with a cap on how many are ejected at once.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct EjectionConfig {
    after_failures: u32,
    eject_for: Duration,
    max_ejection_percent: u32,
}

impl Default for EjectionConfig {
    fn default() -> Self {
        Self {
            after_failures: 5,
            eject_for: Duration::from_secs(30),
            max_ejection_percent: 50,
        }
    }
}

impl EjectionConfig {
    /// Consecutive failed calls that eject an endpoint. Default 5; at least 1.
    pub fn after_failures(mut self, n: u32) -> Self {
        self.after_failures = n;
        self
    }

    /// How long an ejected endpoint gets no calls. Default 30 s; greater
    /// than zero.
    pub fn eject_for(mut self, d: Duration) -> Self {
        self.eject_for = d;
        self
    }

    /// The most endpoints ejected at once, as a percentage of all of them
    /// (rounded down, but at least one endpoint may always be ejected), as
    /// Envoy's `max_ejection_percent`. An endpoint that reaches its failure
    /// threshold while the cap is reached stays in and is ejected at its
    /// next failure once another one has returned. Default 50, so with two
    /// or more endpoints they are never all ejected; 100 lets all go. In
    /// `1..=100`.
    pub fn max_ejection_percent(mut self, percent: u32) -> Self {
        self.max_ejection_percent = percent;
        self
    }

    /// How many of `n` endpoints may be ejected at once.
    fn cap(&self, n: usize) -> usize {
        (n * self.max_ejection_percent as usize / 100).max(1)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=100).contains(&self.max_ejection_percent) {
            return Err(ConfigError::new(
                "ejection.max_ejection_percent",
                format!("must be in 1..=100, got {}", self.max_ejection_percent),
            ));
        }
        if self.after_failures == 0 {
            return Err(ConfigError::new("ejection.after_failures", "must be at least 1"));
        }
        if self.eject_for.is_zero() {
            return Err(ConfigError::new(
                "ejection.eject_for",
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}

/// The endpoints, their breakers and health, and the strategy that picks
/// among them. The pipeline owns one; it is public so that its distribution
/// can be used (and tested) on its own.
///
/// ```
/// use brisk_core::SystemClock;
/// use brisk_pipeline::{Balancer, BreakerConfig, EjectionConfig, Endpoint, Strategy};
///
/// let balancer = Balancer::new(
///     vec![Endpoint::new("a").weight(3), Endpoint::new("b")],
///     Strategy::Weighted,
///     &BreakerConfig::default(),
///     EjectionConfig::default(),
///     SystemClock::shared(),
/// )?;
/// let mut picks = String::new();
/// for _ in 0..4 {
///     let pick = balancer.pick(0).unwrap();
///     picks.push_str(pick.endpoint().name());
///     pick.finish(true);
/// }
/// assert_eq!(picks, "aaba");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Balancer {
    endpoints: Box<[EndpointState]>,
    strategy: Strategy,
    ejection: EjectionConfig,
    clock: SharedClock,
    next: AtomicUsize,
    smooth: Mutex<Vec<i64>>,
    rng: Mutex<fastrand::Rng>,
    // Held while deciding an ejection, so the cap holds under concurrency.
    ejecting: Mutex<()>,
}

struct EndpointState {
    endpoint: Endpoint,
    seed: u64,
    breaker: CircuitBreaker,
    outstanding: AtomicUsize,
    consecutive_failures: AtomicU32,
    ejected_until: Mutex<Option<Instant>>,
    // Whether `ejected_until` may be set: skips its lock and a clock read
    // in the common case.
    ejected: AtomicBool,
    unhealthy: AtomicBool,
    calls: AtomicU64,
    failures: AtomicU64,
    ejections: AtomicU64,
    cost: AtomicU64,
}

/// One endpoint's counters, from [`Balancer::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// The endpoint's name.
    pub name: String,
    /// Calls in flight now.
    pub outstanding: usize,
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Times it was ejected after consecutive failures.
    pub ejections: u64,
    /// Whether it is ejected now.
    pub ejected: bool,
    /// Whether the active health check last found it healthy (true when
    /// there is no check).
    pub healthy: bool,
    /// Its breaker's state.
    pub breaker: BreakerState,
    /// The cost (`Handler::cost`) of the requests sent to it.
    pub cost: u64,
}

/// An endpoint chosen by [`Balancer::pick`]. Report the call's outcome with
/// [`finish`](Self::finish); dropping it unfinished (a panic, a cancelled
/// call) counts neither success nor failure.
#[must_use = "report the outcome with finish()"]
pub struct Pick<'a> {
    balancer: &'a Balancer,
    index: usize,
    finished: bool,
}

impl Pick<'_> {
    /// The chosen endpoint.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.balancer.endpoints[self.index].endpoint
    }

    /// Its index in the balancer's list.
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// Records the outcome: feeds the breaker and the passive health check.
    pub fn finish(mut self, success: bool) {
        self.finished = true;
        self.balancer.record(self.index, success);
    }

    pub(crate) fn add_cost(&self, cost: u64) {
        self.balancer.endpoints[self.index]
            .cost
            .fetch_add(cost, Ordering::Relaxed);
    }
}

impl Drop for Pick<'_> {
    fn drop(&mut self) {
        let ep = &self.balancer.endpoints[self.index];
        ep.outstanding.fetch_sub(1, Ordering::AcqRel);
        if !self.finished {
            ep.breaker.release();
        }
    }
}

impl fmt::Debug for Pick<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pick").field("endpoint", self.endpoint()).finish()
    }
}

impl Balancer {
    /// A balancer over `endpoints`, each with its own breaker.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `endpoints` (empty, a weight of 0, a name
    /// twice), `breaker.<field>` or `ejection.<field>`.
    pub fn new(
        endpoints: Vec<Endpoint>,
        strategy: Strategy,
        breaker: &BreakerConfig,
        ejection: EjectionConfig,
        clock: SharedClock,
    ) -> Result<Self, ConfigError> {
        if endpoints.is_empty() {
            return Err(ConfigError::new("endpoints", "must name at least one endpoint"));
        }
        for (i, ep) in endpoints.iter().enumerate() {
            if ep.weight == 0 {
                return Err(ConfigError::new(
                    "endpoints",
                    format!(
                        "endpoint {:?} has weight 0; weights must be at least 1",
                        ep.name()
                    ),
                ));
            }
            if endpoints[..i].iter().any(|e| e.name == ep.name) {
                return Err(ConfigError::new(
                    "endpoints",
                    format!("endpoint {:?} is listed twice", ep.name()),
                ));
            }
        }
        breaker.validate("breaker")?;
        ejection.validate()?;
        let states = endpoints
            .into_iter()
            .map(|endpoint| {
                Ok(EndpointState {
                    seed: ContentHash::of(endpoint.name()).low64(),
                    endpoint,
                    breaker: CircuitBreaker::new(breaker.clone(), clock.clone())?,
                    outstanding: AtomicUsize::new(0),
                    consecutive_failures: AtomicU32::new(0),
                    ejected_until: Mutex::new(None),
                    ejected: AtomicBool::new(false),
                    unhealthy: AtomicBool::new(false),
                    calls: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    ejections: AtomicU64::new(0),
                    cost: AtomicU64::new(0),
                })
            })
            .collect::<Result<Box<[_]>, ConfigError>>()?;
        Ok(Self {
            smooth: Mutex::new(vec![0; states.len()]),
            endpoints: states,
            strategy,
            ejection,
            clock,
            next: AtomicUsize::new(0),
            rng: Mutex::new(fastrand::Rng::with_seed(0x5eed_b415)),
            ejecting: Mutex::new(()),
        })
    }

    /// The endpoints, in the order given.
    pub fn endpoints(&self) -> impl ExactSizeIterator<Item = &Endpoint> {
        self.endpoints.iter().map(|e| &e.endpoint)
    }

    /// The strategy.
    #[must_use]
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Chooses an available endpoint for a call with `key` (used by
    /// [`Strategy::ConsistentHash`] only) and counts the call as
    /// outstanding until the [`Pick`] is dropped.
    ///
    /// # Errors
    ///
    /// When no endpoint is available: the shortest wait until one may be
    /// (zero when one is only marked unhealthy by the active check).
    pub fn pick(&self, key: u64) -> Result<Pick<'_>, Duration> {
        // No allocation for the usual handful of endpoints.
        let mut small = [false; 16];
        let mut large = Vec::new();
        let excluded: &mut [bool] = if self.endpoints.len() <= small.len() {
            &mut small[..self.endpoints.len()]
        } else {
            large.resize(self.endpoints.len(), false);
            &mut large
        };
        loop {
            let mut wait: Option<Duration> = None;
            for (i, ep) in self.endpoints.iter().enumerate() {
                if !excluded[i]
                    && let Err(w) = self.available(ep)
                {
                    excluded[i] = true;
                    wait = Some(wait.map_or(w, |x| x.min(w)));
                }
            }
            let Some(index) = self.choose(key, excluded) else {
                return Err(wait.unwrap_or(Duration::ZERO));
            };
            let ep = &self.endpoints[index];
            if ep.breaker.try_acquire().is_ok() {
                ep.outstanding.fetch_add(1, Ordering::AcqRel);
                ep.calls.fetch_add(1, Ordering::Relaxed);
                return Ok(Pick {
                    balancer: self,
                    index,
                    finished: false,
                });
            }
            excluded[index] = true;
        }
    }

    /// Marks endpoint `index` healthy or not (the active health check);
    /// an unhealthy endpoint gets no calls.
    pub fn set_healthy(&self, index: usize, healthy: bool) {
        if let Some(ep) = self.endpoints.get(index) {
            ep.unhealthy.store(!healthy, Ordering::Release);
        }
    }

    /// The counters of every endpoint, in order.
    #[must_use]
    pub fn stats(&self) -> Vec<EndpointStats> {
        self.endpoints
            .iter()
            .map(|ep| EndpointStats {
                name: ep.endpoint.name().to_owned(),
                outstanding: ep.outstanding.load(Ordering::Relaxed),
                calls: ep.calls.load(Ordering::Relaxed),
                failures: ep.failures.load(Ordering::Relaxed),
                ejections: ep.ejections.load(Ordering::Relaxed),
                ejected: self.ejected_for(ep).is_some(),
                healthy: !ep.unhealthy.load(Ordering::Relaxed),
                breaker: ep.breaker.state(),
                cost: ep.cost.load(Ordering::Relaxed),
            })
            .collect()
    }

    fn available(&self, ep: &EndpointState) -> Result<(), Duration> {
        if let Some(left) = self.ejected_for(ep) {
            return Err(left);
        }
        if ep.unhealthy.load(Ordering::Acquire) {
            return Err(Duration::ZERO);
        }
        ep.breaker.would_allow()
    }

    fn ejected_for(&self, ep: &EndpointState) -> Option<Duration> {
        if !ep.ejected.load(Ordering::Acquire) {
            return None;
        }
        let now = self.clock.now();
        let mut until = ep.ejected_until.lock().unwrap_or_else(PoisonError::into_inner);
        match *until {
            Some(t) if now < t => Some(t - now),
            _ => {
                *until = None;
                ep.ejected.store(false, Ordering::Release);
                None
            }
        }
    }

    fn choose(&self, key: u64, excluded: &[bool]) -> Option<usize> {
        let n = self.endpoints.len();
        let candidates = || (0..n).filter(|&i| !excluded[i]);
        match self.strategy {
            Strategy::RoundRobin => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|k| (start + k) % n).find(|&i| !excluded[i])
            }
            Strategy::Weighted => {
                let mut scores = self.smooth.lock().unwrap_or_else(PoisonError::into_inner);
                let mut total = 0i64;
                let mut best: Option<usize> = None;
                for i in candidates() {
                    let w = i64::from(self.endpoints[i].endpoint.weight);
                    scores[i] += w;
                    total += w;
                    if best.is_none_or(|b| scores[i] > scores[b]) {
                        best = Some(i);
                    }
                }
                if let Some(b) = best {
                    scores[b] -= total;
                }
                best
            }
            Strategy::LeastOutstanding => {
                // Ties rotate, so idle endpoints share the calls.
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&i| !excluded[i])
                    .min_by_key(|&i| self.endpoints[i].outstanding.load(Ordering::Acquire))
            }
            Strategy::PowerOfTwo => {
                let live: Vec<usize> = candidates().collect();
                match live.len() {
                    0 => None,
                    1 => Some(live[0]),
                    len => {
                        let (a, b) = {
                            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
                            let a = rng.usize(0..len);
                            let b = (a + 1 + rng.usize(0..len - 1)) % len;
                            (live[a], live[b])
                        };
                        let load = |i: usize| self.endpoints[i].outstanding.load(Ordering::Acquire);
                        Some(if load(b) < load(a) { b } else { a })
                    }
                }
            }
            Strategy::ConsistentHash => {
                candidates().max_by(|&a, &b| self.rendezvous(a, key).total_cmp(&self.rendezvous(b, key)))
            }
        }
    }

    /// Weighted rendezvous score of endpoint `i` for `key`: `w / -ln(u)`
    /// with `u` in (0, 1) from a 64-bit mix of the key and the endpoint.
    #[allow(clippy::cast_precision_loss)] // 53 bits of the hash are plenty
    fn rendezvous(&self, i: usize, key: u64) -> f64 {
        let ep = &self.endpoints[i];
        let h = mix64(key ^ ep.seed);
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        f64::from(ep.endpoint.weight) / -u.ln()
    }

    fn record(&self, index: usize, success: bool) {
        let ep = &self.endpoints[index];
        ep.breaker.record(success);
        if success {
            ep.consecutive_failures.store(0, Ordering::Release);
            return;
        }
        ep.failures.fetch_add(1, Ordering::Relaxed);
        let failures = ep.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= self.ejection.after_failures {
            let _deciding = self.ejecting.lock().unwrap_or_else(PoisonError::into_inner);
            if self.ejected_for(ep).is_some() {
                return;
            }
            let ejected = self
                .endpoints
                .iter()
                .filter(|e| self.ejected_for(e).is_some())
                .count();
            if ejected >= self.ejection.cap(self.endpoints.len()) {
                // Capped: it stays in, and goes at its next failure once
                // there is room.
                return;
            }
            ep.consecutive_failures.store(0, Ordering::Release);
            *ep.ejected_until.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(self.clock.now() + self.ejection.eject_for);
            ep.ejected.store(true, Ordering::Release);
            ep.ejections.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("strategy", &self.strategy)
            .field("endpoints", &self.stats())
            .finish_non_exhaustive()
    }
}

/// splitmix64's finaliser: a fast, well-spread 64-bit mix.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
