//! A limiter shared by many processes through Redis (feature `redis`).
//
// Design. The GCRA state of a key lives in one Redis string, updated by a
// Lua script (`gcra.lua`, run with EVALSHA; redis-rs falls back to EVAL and
// reloads it after a restart) that reads the time from Redis itself, checks
// every window and spends all of them or none, atomically. So any number of
// processes sharing a key admit exactly what the quota allows, whatever
// their clocks say.
//
// A key that was rejected is remembered locally until its retry time, so a
// client hammering past its limit costs no round trip until then. When
// Redis cannot answer, the failure policy decides (fail open: admit; fail
// closed: refuse), and both are counted. Shadow mode runs every decision but
// admits everything, counting what it would have refused: for rolling out a
// new limit safely.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use brisk_core::{ConfigError, SharedClock, StatsReport, StatsSource, SystemClock};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::quota::QuotaSet;
use crate::{Quota, RateLimitError};

/// What to do when Redis cannot answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Admit the request (availability first). The default.
    #[default]
    Open,
    /// Refuse it with [`RateLimitError::Unavailable`] (protection first).
    Closed,
}

/// Builds a [`RedisRateLimiter`].
#[derive(Clone, Debug)]
#[must_use]
pub struct RedisRateLimiterBuilder {
    url: String,
    quotas: Vec<Quota>,
    prefix: String,
    failure: FailurePolicy,
    shadow: bool,
    timeout: Duration,
    cache_keys: usize,
    clock: Option<SharedClock>,
    name: Cow<'static, str>,
}

impl RedisRateLimiterBuilder {
    /// Adds a window, with the same semantics as in-process (a token
    /// bucket, or a [strict window](Quota::strict)); at least one is
    /// required. Periods are limited to 100 days, and a window's burst ×
    /// emission interval to 2^53 ns (the script's arithmetic stays exact
    /// below that).
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quotas.push(quota);
        self
    }

    /// Adds several windows.
    pub fn quotas(mut self, quotas: impl IntoIterator<Item = Quota>) -> Self {
        self.quotas.extend(quotas);
        self
    }

    /// The prefix of every Redis key this limiter writes. Default
    /// `"brisk:rl:"`. Limiters with different windows need different
    /// prefixes.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// What to do when Redis cannot answer. Default [`FailurePolicy::Open`].
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure = policy;
        self
    }

    /// Shadow mode: decide and count, but never refuse. Default off.
    pub fn shadow(mut self, shadow: bool) -> Self {
        self.shadow = shadow;
        self
    }

    /// How long to wait for Redis (to connect, and for each answer) before
    /// the failure policy applies. Default 250 ms; must be greater than zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many rejected keys to remember locally until their retry time
    /// (0 turns the cache off). Default 100,000.
    pub fn local_cache_keys(mut self, keys: usize) -> Self {
        self.cache_keys = keys;
        self
    }

    /// The local clock, used only for the cache of rejected keys (decisions
    /// use Redis's time). Default [`SystemClock`].
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A name for the stats' `limiter` label. Default `"redis"`.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Checks the configuration and builds the limiter. It connects on
    /// first use (and reconnects by itself), so it builds even while Redis
    /// is down.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `url` (not a Redis URL), `quotas`,
    /// `quotas[i].limit`, `quotas[i].period`, `quotas[i].burst` or `timeout`.
    pub fn build(self) -> Result<RedisRateLimiter, ConfigError> {
        let set = QuotaSet::new(self.quotas, "quotas")?;
        for (i, (q, p)) in set.quotas.iter().zip(&set.params).enumerate() {
            if q.period() > MAX_REDIS_PERIOD {
                return Err(ConfigError::new(
                    format!("quotas[{i}].period"),
                    format!("must be at most 100 days with Redis ({q})"),
                ));
            }
            // A window's debt reaches `burst × interval`; Lua's doubles hold
            // it exactly below 2^53 ns (104 days).
            if p.capacity > MAX_REDIS_DEBT {
                return Err(ConfigError::new(
                    format!("quotas[{i}].burst"),
                    format!(
                        "holds more than 104 days of debt, beyond what Redis's script keeps exact ({q}); use a smaller burst"
                    ),
                ));
            }
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be greater than zero"));
        }
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| ConfigError::new("url", format!("is not a Redis URL: {e}")))?;
        let mut window_args = Vec::with_capacity(set.len() * 2);
        for p in &set.params {
            window_args.push(p.interval);
            window_args.push(p.capacity);
        }
        Ok(RedisRateLimiter {
            inner: Arc::new(Inner {
                client,
                connection: tokio::sync::OnceCell::new(),
                script: redis::Script::new(SCRIPT),
                set,
                window_args,
                prefix: self.prefix,
                failure: self.failure,
                shadow: self.shadow,
                timeout: self.timeout,
                cache_keys: self.cache_keys,
                rejected: Mutex::new(HashMap::new()),
                clock: self.clock.unwrap_or_else(SystemClock::shared),
                name: self.name,
                stats: Counters::default(),
            }),
        })
    }
}

const SCRIPT: &str = include_str!("gcra.lua");
const MAX_REDIS_PERIOD: Duration = Duration::from_secs(100 * 86_400);
const MAX_REDIS_DEBT: u64 = 1 << 53;

/// A rate limiter whose state lives in Redis, shared by every process that
/// uses the same URL, prefix and key: GCRA in a Lua script, with Redis's
/// time, several windows checked and spent atomically in one call.
///
/// Cheap to clone; clones share the connection. Needs a tokio runtime.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use brisk_rate_limiter::{FailurePolicy, Quota, RedisRateLimiter};
///
/// let limiter = RedisRateLimiter::builder("redis://127.0.0.1/")
///     .quota(Quota::per_minute(100))
///     .quota(Quota::per_hour(1_000))
///     .failure_policy(FailurePolicy::Closed)
///     .build()?;
/// limiter.check("client-42", 1).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisRateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    script: redis::Script,
    set: QuotaSet,
    window_args: Vec<u64>,
    prefix: String,
    failure: FailurePolicy,
    shadow: bool,
    timeout: Duration,
    cache_keys: usize,
    /// Rejected keys → local instant (ns of `clock` since its epoch) until
    /// which they are refused without asking Redis.
    rejected: Mutex<HashMap<String, (std::time::Instant, usize)>>,
    clock: SharedClock,
    name: Cow<'static, str>,
    stats: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    allowed: AtomicU64,
    limited: AtomicU64,
    cache_hits: AtomicU64,
    failed_open: AtomicU64,
    failed_closed: AtomicU64,
    shadow_rejections: AtomicU64,
}

/// A snapshot of a [`RedisRateLimiter`]'s counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Requests Redis admitted.
    pub allowed: u64,
    /// Requests refused for lack of room (by Redis or the local cache).
    pub limited: u64,
    /// Of those, refused by the local cache without a round trip.
    pub cache_hits: u64,
    /// Requests admitted because Redis could not answer (fail open).
    pub failed_open: u64,
    /// Requests refused because Redis could not answer (fail closed).
    pub failed_closed: u64,
    /// Requests shadow mode admitted that the limit would have refused.
    pub shadow_rejections: u64,
}

impl RedisRateLimiter {
    /// A builder for a limiter on the Redis server at `url`
    /// (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> RedisRateLimiterBuilder {
        RedisRateLimiterBuilder {
            url: url.into(),
            quotas: Vec::new(),
            prefix: "brisk:rl:".to_owned(),
            failure: FailurePolicy::Open,
            shadow: false,
            timeout: Duration::from_millis(250),
            cache_keys: 100_000,
            clock: None,
            name: Cow::Borrowed("redis"),
        }
    }

    /// Spends `cost` on every window of `key` if all have room, atomically
    /// across every process sharing the key.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`] (which window, retry after how long),
    /// [`RateLimitError::CostTooLarge`], or [`RateLimitError::Unavailable`]
    /// when Redis cannot answer and the policy is to fail closed. In shadow
    /// mode only `CostTooLarge` and `Unavailable` are returned.
    pub async fn check(&self, key: &str, cost: u64) -> Result<(), RateLimitError> {
        self.decide(key, cost, "check").await
    }

    /// Whether [`check`](Self::check) would pass now, spending nothing.
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check).
    pub async fn peek(&self, key: &str, cost: u64) -> Result<(), RateLimitError> {
        self.decide(key, cost, "peek").await
    }

    /// The windows, in order.
    #[must_use]
    pub fn quotas(&self) -> &[Quota] {
        &self.inner.set.quotas
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> RedisStats {
        let c = &self.inner.stats;
        RedisStats {
            allowed: c.allowed.load(Relaxed),
            limited: c.limited.load(Relaxed),
            cache_hits: c.cache_hits.load(Relaxed),
            failed_open: c.failed_open.load(Relaxed),
            failed_closed: c.failed_closed.load(Relaxed),
            shadow_rejections: c.shadow_rejections.load(Relaxed),
        }
    }

    async fn decide(&self, key: &str, cost: u64, mode: &str) -> Result<(), RateLimitError> {
        let inner = &*self.inner;
        crate::gcra::check_cost(&inner.set.params, cost)
            .map_err(|deny| RateLimitError::from_deny(deny, &inner.set.quotas, cost))?;
        if let Some(err) = inner.cached_rejection(key) {
            inner.stats.cache_hits.fetch_add(1, Relaxed);
            return inner.refuse(err);
        }
        match inner.eval(key, cost, mode).await {
            Ok((1, _, _)) => {
                if mode == "check" {
                    inner.stats.allowed.fetch_add(1, Relaxed);
                }
                Ok(())
            }
            Ok((_, window, wait)) => {
                let window = usize::try_from(window).unwrap_or(0).min(inner.set.len() - 1);
                let retry_after = Duration::from_nanos(u64::try_from(wait).unwrap_or(0));
                if mode == "check" && inner.cache_keys > 0 && !inner.shadow {
                    inner.remember(key, retry_after, window);
                }
                inner.refuse(RateLimitError::Limited {
                    window,
                    quota: inner.set.quotas[window].clone(),
                    retry_after,
                })
            }
            Err(e) => match inner.failure {
                FailurePolicy::Open => {
                    inner.stats.failed_open.fetch_add(1, Relaxed);
                    Ok(())
                }
                FailurePolicy::Closed => {
                    inner.stats.failed_closed.fetch_add(1, Relaxed);
                    Err(RateLimitError::Unavailable {
                        reason: e.to_string(),
                    })
                }
            },
        }
    }
}

impl Inner {
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500));
        self.connection
            .get_or_try_init(|| async {
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await
            .cloned()
    }

    async fn eval(&self, key: &str, cost: u64, mode: &str) -> redis::RedisResult<(i64, i64, i64)> {
        let mut con = self.connection().await?;
        let mut call = self.script.key(format!("{}{key}", self.prefix));
        call.arg(cost)
            .arg(self.set.len())
            .arg(mode)
            .arg(&self.window_args);
        tokio::time::timeout(self.timeout * 2, call.invoke_async(&mut con))
            .await
            .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timed out waiting for Redis")))?
    }

    /// Refuses with `err`, unless in shadow mode.
    fn refuse(&self, err: RateLimitError) -> Result<(), RateLimitError> {
        if self.shadow {
            self.stats.shadow_rejections.fetch_add(1, Relaxed);
            return Ok(());
        }
        self.stats.limited.fetch_add(1, Relaxed);
        Err(err)
    }

    fn cached_rejection(&self, key: &str) -> Option<RateLimitError> {
        if self.cache_keys == 0 || self.shadow {
            return None;
        }
        let now = self.clock.now();
        let mut map = self.rejected.lock().unwrap_or_else(PoisonError::into_inner);
        let &(until, window) = map.get(key)?;
        if until <= now {
            map.remove(key);
            return None;
        }
        Some(RateLimitError::Limited {
            window,
            quota: self.set.quotas[window].clone(),
            retry_after: until - now,
        })
    }

    fn remember(&self, key: &str, retry_after: Duration, window: usize) {
        let now = self.clock.now();
        let mut map = self.rejected.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.cache_keys {
            map.retain(|_, (until, _)| *until > now);
            if map.len() >= self.cache_keys {
                map.clear();
            }
        }
        map.insert(key.to_owned(), (now + retry_after, window));
    }
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("name", &self.inner.name)
            .field("quotas", &self.inner.set.quotas)
            .field("prefix", &self.inner.prefix)
            .field("failure", &self.inner.failure)
            .field("shadow", &self.inner.shadow)
            .finish_non_exhaustive()
    }
}

impl StatsSource for RedisRateLimiter {
    fn report_stats(&self, out: &mut StatsReport) {
        let s = self.stats();
        let name = &self.inner.name;
        let counters: [(&'static str, &'static str, u64); 6] = [
            (
                "brisk_rate_limiter_redis_allowed_total",
                "Requests Redis admitted",
                s.allowed,
            ),
            (
                "brisk_rate_limiter_limited_total",
                "Requests refused for lack of room",
                s.limited,
            ),
            (
                "brisk_rate_limiter_redis_cache_hits_total",
                "Refusals answered by the local cache of rejected keys",
                s.cache_hits,
            ),
            (
                "brisk_rate_limiter_redis_failed_open_total",
                "Requests admitted while Redis was unreachable",
                s.failed_open,
            ),
            (
                "brisk_rate_limiter_redis_failed_closed_total",
                "Requests refused while Redis was unreachable",
                s.failed_closed,
            ),
            (
                "brisk_rate_limiter_shadow_rejections_total",
                "Requests shadow mode admitted that the limit would have refused",
                s.shadow_rejections,
            ),
        ];
        for (metric, help, value) in counters {
            let _ = out.counter(metric, help, value).label("limiter", name.clone());
        }
    }
}
