//! The cache builder and per-namespace settings.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use brisk_core::{ConfigError, SharedClock, SystemClock};

use crate::Cache;
use crate::cache::{Executor, NsSettings, Parts, Refresher, Weigher};
use crate::policy::{Policy, PolicyConfig};
use crate::weigh::{ENTRY_OVERHEAD_BYTES, MemSize};

/// Expiry settings of one namespace: a kind of data with its own lifetime,
/// such as `"sentiment"` for 15 minutes and `"templates"` for 24 hours.
///
/// Every setting defaults to "none": entries live until evicted.
///
/// ```
/// use std::time::Duration;
/// use brisk_cache::NamespaceConfig;
///
/// let sentiment = NamespaceConfig::new()
///     .ttl(Duration::from_secs(15 * 60))
///     .negative_ttl(Duration::from_secs(30));
/// # let _ = sentiment;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct NamespaceConfig {
    ttl: Option<Duration>,
    tti: Option<Duration>,
    negative_ttl: Option<Duration>,
    refresh_ahead: Option<Duration>,
    stale_limit: Option<Duration>,
    adaptive_ttl: Option<(Duration, Duration)>,
}

impl NamespaceConfig {
    /// No expiry (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Time-to-live: an entry expires this long after it was written
    /// (shortened by the cache's jitter). Default: none.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Time-to-idle: an entry expires when it has not been read for this
    /// long. Default: none.
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.tti = Some(tti);
        self
    }

    /// Time-to-live of cached "not found" results
    /// ([`Cache::get_or_load_optional`]). Default: none, they get the
    /// normal TTL.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Refresh-ahead: an entry read less than `window` before its
    /// time-to-live runs out is reloaded once, in the background, by the
    /// cache's [`reloader`](CacheBuilder::reloader), while the read returns
    /// the current value. Needs a [`ttl`](Self::ttl) longer than `window`.
    /// Default: none.
    pub fn refresh_ahead(mut self, window: Duration) -> Self {
        self.refresh_ahead = Some(window);
        self
    }

    /// How long past its expiry an entry keeps being served (stale) while
    /// its background refresh runs or after that refresh failed; each stale
    /// read after a failure starts one new attempt. Needs
    /// [`refresh_ahead`](Self::refresh_ahead). Default: none (an expired
    /// entry is a miss).
    pub fn stale_limit(mut self, limit: Duration) -> Self {
        self.stale_limit = Some(limit);
        self
    }

    /// Adaptive TTL between `min` and `max`: when a refresh returns a value
    /// equal to the current one, the entry's TTL doubles (up to `max`);
    /// when it returns a different value, the TTL halves (down to `min`).
    /// An entry starts with the namespace's [`ttl`](Self::ttl), which must
    /// lie within the range. Needs [`refresh_ahead`](Self::refresh_ahead),
    /// with a window shorter than `min`, and no
    /// [`time_to_idle`](Self::time_to_idle). Default: none (fixed TTL).
    pub fn adaptive_ttl(mut self, min: Duration, max: Duration) -> Self {
        self.adaptive_ttl = Some((min, max));
        self
    }

    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let field = |f: &str| format!("namespace.{name}.{f}");
        for (f, value) in [
            ("ttl", self.ttl),
            ("time_to_idle", self.tti),
            ("negative_ttl", self.negative_ttl),
            ("refresh_ahead", self.refresh_ahead),
            ("stale_limit", self.stale_limit),
            ("adaptive_ttl", self.adaptive_ttl.map(|(min, _)| min)),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(ConfigError::new(
                    field(f),
                    "must be longer than zero (leave it unset for no expiry)",
                ));
            }
        }
        if let Some(window) = self.refresh_ahead {
            match self.ttl {
                None => {
                    return Err(ConfigError::new(
                        field("refresh_ahead"),
                        "needs a ttl: refresh-ahead reloads entries before their ttl runs out",
                    ));
                }
                Some(ttl) if window >= ttl => {
                    return Err(ConfigError::new(
                        field("refresh_ahead"),
                        format!("must be shorter than the ttl ({ttl:?}), got {window:?}"),
                    ));
                }
                Some(_) => {}
            }
        } else if self.stale_limit.is_some() || self.adaptive_ttl.is_some() {
            let f = if self.stale_limit.is_some() {
                "stale_limit"
            } else {
                "adaptive_ttl"
            };
            return Err(ConfigError::new(
                field(f),
                "needs refresh_ahead: it applies to background refreshes",
            ));
        }
        if let Some((min, max)) = self.adaptive_ttl {
            if min > max {
                return Err(ConfigError::new(
                    field("adaptive_ttl"),
                    format!("inverted range: min {min:?} is above max {max:?}"),
                ));
            }
            if self.tti.is_some() {
                return Err(ConfigError::new(
                    field("adaptive_ttl"),
                    "cannot be combined with time_to_idle",
                ));
            }
            if let Some(ttl) = self.ttl
                && !(min..=max).contains(&ttl)
            {
                return Err(ConfigError::new(
                    field("adaptive_ttl"),
                    format!("the ttl ({ttl:?}) must lie within {min:?}..={max:?}"),
                ));
            }
            if let Some(window) = self.refresh_ahead
                && window >= min
            {
                return Err(ConfigError::new(
                    field("refresh_ahead"),
                    format!("must be shorter than the adaptive ttl's minimum ({min:?}), got {window:?}"),
                ));
            }
        }
        if let (Some(neg), Some(ttl)) = (self.negative_ttl, self.ttl)
            && neg > ttl
        {
            return Err(ConfigError::new(
                field("negative_ttl"),
                format!("must not exceed the namespace's ttl ({ttl:?}), got {neg:?}"),
            ));
        }
        Ok(())
    }
}

/// Builds a [`Cache`].
///
/// Defaults: at most 10,000 entries, each weighing 1; the default namespace
/// (`"default"`) with no expiry; no jitter; the system clock; an adaptive
/// W-TinyLFU window starting at 1% of the capacity; no reloader, and
/// background refreshes (if a reloader is set) on a new thread each.
///
/// ```
/// use std::time::Duration;
/// use brisk_cache::{Cache, NamespaceConfig};
///
/// let cache: Cache<String, String> = Cache::builder()
///     .max_weight(1 << 20)
///     .weigher(|k: &String, v: &String| (k.len() + v.len()) as u32)
///     .namespace("templates", NamespaceConfig::new().ttl(Duration::from_secs(24 * 3600)))
///     .jitter(0.1)
///     .build()?;
/// cache.namespace("templates")?.insert("welcome".into(), "Hello {name}".into());
/// assert_eq!(cache.weight(), 19);
///
/// let err = Cache::<u64, u64>::builder().max_capacity(0).build().unwrap_err();
/// assert_eq!(err.field(), "max_capacity");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct CacheBuilder<K, V> {
    max_capacity: Option<u64>,
    max_weight: Option<(&'static str, u64)>,
    weigher: Option<Weigher<K, V>>,
    max_entry_weight: Option<u64>,
    default_ns: NamespaceConfig,
    namespaces: Vec<(String, NamespaceConfig)>,
    jitter: f64,
    clock: Option<SharedClock>,
    initial_window: f64,
    adaptive: bool,
    shards: Option<usize>,
    reloader: Option<Refresher<K, V>>,
    executor: Option<Executor>,
}

impl<K, V> fmt::Debug for CacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("max_weight", &self.max_weight)
            .field("weigher", &self.weigher.is_some())
            .field("max_entry_weight", &self.max_entry_weight)
            .field("default_ns", &self.default_ns)
            .field("namespaces", &self.namespaces)
            .field("jitter", &self.jitter)
            .field("initial_window", &self.initial_window)
            .field("adaptive", &self.adaptive)
            .field("reloader", &self.reloader.is_some())
            .field("refresh_executor", &self.executor.is_some())
            .finish_non_exhaustive()
    }
}

impl<K, V> Default for CacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A builder with the defaults above.
    pub fn new() -> Self {
        Self {
            max_capacity: None,
            max_weight: None,
            weigher: None,
            max_entry_weight: None,
            default_ns: NamespaceConfig::default(),
            namespaces: Vec::new(),
            jitter: 0.0,
            clock: None,
            initial_window: 0.01,
            adaptive: true,
            shards: None,
            reloader: None,
            executor: None,
        }
    }

    /// At most this many entries. Default: 10,000. Cannot be combined with
    /// [`max_weight`](Self::max_weight) or
    /// [`max_memory_bytes`](Self::max_memory_bytes).
    pub fn max_capacity(mut self, entries: u64) -> Self {
        self.max_capacity = Some(entries);
        self
    }

    /// At most this total weight, as measured by the
    /// [`weigher`](Self::weigher) (each entry weighs 1 without one).
    /// Default: none (see [`max_capacity`](Self::max_capacity)).
    pub fn max_weight(mut self, weight: u64) -> Self {
        self.max_weight = Some(("max_weight", weight));
        self
    }

    /// How much an entry weighs. Default: 1 per entry.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// The heaviest entry that is cached; heavier values are rejected (see
    /// [`Cache::insert`]). Default: the maximum total weight.
    pub fn max_entry_weight(mut self, weight: u64) -> Self {
        self.max_entry_weight = Some(weight);
        self
    }

    /// Time-to-live of the default namespace. Default: none.
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.default_ns = self.default_ns.ttl(ttl);
        self
    }

    /// Time-to-idle of the default namespace. Default: none.
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.default_ns = self.default_ns.time_to_idle(tti);
        self
    }

    /// Settings of the default namespace (`"default"`). Default: no expiry.
    pub fn default_namespace(mut self, config: NamespaceConfig) -> Self {
        self.default_ns = config;
        self
    }

    /// Declares a namespace with its own expiry; reach it with
    /// [`Cache::namespace`]. Default: only `"default"` exists.
    pub fn namespace(mut self, name: impl Into<String>, config: NamespaceConfig) -> Self {
        self.namespaces.push((name.into(), config));
        self
    }

    /// Randomly shortens each time-to-live by up to this fraction (0 to
    /// 0.5), so entries written together do not all expire together.
    /// Default: 0 (exact TTLs).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// The clock that TTLs and load times are measured with. Default: the
    /// system clock. Tests pass a [`ManualClock`](brisk_core::ManualClock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The W-TinyLFU window's starting share of the capacity (0 to 1).
    /// Default: 0.01.
    pub fn initial_window(mut self, fraction: f64) -> Self {
        self.initial_window = fraction;
        self
    }

    /// Whether a hill climber resizes the window from the observed hit
    /// ratio. Default: true.
    pub fn adaptive_window(mut self, adaptive: bool) -> Self {
        self.adaptive = adaptive;
        self
    }

    /// Number of map shards (rounded up to a power of two, 1 to 1024).
    /// Default: four per CPU, at most 64.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Where background refreshes run: `spawn` is given each refresh as a
    /// task to run once, on any thread. Default: a new thread per refresh
    /// (`std::thread::spawn`). In a tokio service, pass
    /// `|task| drop(tokio::task::spawn_blocking(task))`; tests can queue the
    /// tasks and run them when they choose.
    pub fn refresh_executor(
        mut self,
        spawn: impl Fn(Box<dyn FnOnce() + Send>) + Send + Sync + 'static,
    ) -> Self {
        self.executor = Some(Arc::new(spawn));
        self
    }

    /// Validates the settings and builds the cache.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: a zero capacity or weight,
    /// `max_capacity` combined with `max_weight`, a jitter or window share
    /// out of range, a zero TTL, a negative TTL longer than the TTL, or a
    /// duplicate namespace; for refresh-ahead, a window not shorter than
    /// the TTL, no [`reloader`](Self::reloader), a stale limit or adaptive
    /// TTL without refresh-ahead, or an inverted adaptive TTL range.
    pub fn build(self) -> Result<Cache<K, V>, ConfigError> {
        let (field, limit) = match (self.max_capacity, self.max_weight) {
            (Some(_), Some((field, _))) => {
                return Err(ConfigError::new(
                    field,
                    "cannot be combined with `max_capacity`: bound the cache by entries or by weight",
                ));
            }
            (Some(n), None) => ("max_capacity", n),
            (None, Some((field, w))) => (field, w),
            (None, None) => ("max_capacity", 10_000),
        };
        if limit == 0 {
            return Err(ConfigError::new(field, "must be at least 1"));
        }
        let max_entry_weight = self.max_entry_weight.unwrap_or(limit);
        if max_entry_weight == 0 {
            return Err(ConfigError::new("max_entry_weight", "must be at least 1"));
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return Err(ConfigError::new(
                "jitter",
                format!("must be between 0 and 0.5, got {}", self.jitter),
            ));
        }
        if !(0.0..=1.0).contains(&self.initial_window) {
            return Err(ConfigError::new(
                "initial_window",
                format!("must be between 0 and 1, got {}", self.initial_window),
            ));
        }
        if let Some(s) = self.shards
            && !(1..=1024).contains(&s)
        {
            return Err(ConfigError::new(
                "shards",
                format!("must be between 1 and 1024, got {s}"),
            ));
        }
        let mut namespaces = vec![("default".to_owned(), self.default_ns)];
        for (name, config) in self.namespaces {
            if namespaces.iter().any(|(n, _)| *n == name) {
                return Err(ConfigError::new(
                    "namespace",
                    format!("{name:?} is declared twice"),
                ));
            }
            if namespaces.len() > usize::from(u16::MAX) {
                return Err(ConfigError::new("namespace", "at most 65535 namespaces"));
            }
            namespaces.push((name, config));
        }
        for (name, config) in &namespaces {
            config.validate(name)?;
            if config.refresh_ahead.is_some() && self.reloader.is_none() {
                return Err(ConfigError::new(
                    format!("namespace.{name}.refresh_ahead"),
                    "needs a reloader (CacheBuilder::reloader) to reload entries with",
                ));
            }
        }
        let count_based = self.weigher.is_none();
        let expected_entries = if count_based {
            limit
        } else {
            (limit / 64).max(1024)
        };
        let policy = Policy::new(PolicyConfig {
            max_weight: limit,
            initial_window: self.initial_window,
            adaptive: self.adaptive,
            expected_entries,
        });
        let shards = self.shards.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(4, std::num::NonZero::get)
                .saturating_mul(4)
                .min(64)
        });
        let initial_capacity = if count_based {
            usize::try_from(limit.min(1 << 22)).unwrap_or(1 << 22)
        } else {
            0
        };
        Ok(Cache::from_parts(Parts {
            policy,
            shards,
            namespaces: namespaces
                .into_iter()
                .map(|(name, c)| NsSettings {
                    name,
                    ttl: c.ttl,
                    tti: c.tti,
                    negative_ttl: c.negative_ttl,
                    refresh_ahead: c.refresh_ahead,
                    stale_limit: c.stale_limit,
                    adaptive_ttl: c.adaptive_ttl,
                })
                .collect(),
            clock: self.clock.unwrap_or_else(SystemClock::shared),
            weigher: self.weigher,
            max_weight: limit,
            max_entry_weight,
            jitter: self.jitter,
            initial_capacity,
            refresher: self.reloader,
            executor: self.executor.unwrap_or_else(|| {
                Arc::new(|task: Box<dyn FnOnce() + Send>| {
                    // A refresh that cannot get a thread is skipped: the
                    // entry keeps its value and expires as usual.
                    let _ = std::thread::Builder::new()
                        .name("brisk-cache-refresh".into())
                        .spawn(task);
                })
            }),
        }))
    }
}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + MemSize + 'static,
    V: Clone + Send + Sync + MemSize + 'static,
{
    /// Bounds the cache by memory: each entry weighs its key's and value's
    /// [`MemSize`] plus [`ENTRY_OVERHEAD_BYTES`], and the total stays under
    /// `bytes`. Replaces any weigher. Default: none.
    pub fn max_memory_bytes(mut self, bytes: u64) -> Self {
        self.max_weight = Some(("max_memory_bytes", bytes));
        self.weigher = Some(Arc::new(|k: &K, v: &V| {
            u32::try_from(k.mem_size() + v.mem_size() + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
        }));
        self
    }
}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + PartialEq + 'static,
{
    /// The loader that refresh-ahead reloads entries with: given the
    /// namespace name and the key, it returns the fresh value or an error
    /// (counted in `load_errors`; the current value stays). It runs on the
    /// [`refresh_executor`](Self::refresh_executor), once per key at a
    /// time: a concurrent [`Cache::get_or_load`] of the same key waits for
    /// it instead of loading again. Values are compared with `PartialEq`
    /// for [`NamespaceConfig::adaptive_ttl`]. Needed by namespaces with
    /// [`NamespaceConfig::refresh_ahead`]. Default: none.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brisk_cache::{Cache, NamespaceConfig};
    ///
    /// let cache: Cache<String, String> = Cache::builder()
    ///     .namespace(
    ///         "quotes",
    ///         NamespaceConfig::new()
    ///             .ttl(Duration::from_secs(60))
    ///             .refresh_ahead(Duration::from_secs(10))
    ///             .stale_limit(Duration::from_secs(30)),
    ///     )
    ///     .reloader(|_namespace: &str, symbol: &String| {
    ///         Ok::<_, std::io::Error>(format!("{symbol}: 101.5"))
    ///     })
    ///     .build()?;
    /// # let _ = cache;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reloader<E>(mut self, load: impl Fn(&str, &K) -> Result<V, E> + Send + Sync + 'static) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.reloader = Some(Refresher {
            load: Arc::new(move |ns: &str, k: &K| {
                load(ns, k).map_err(|e| Box::new(e) as crate::cache::BoxError)
            }),
            same: <V as PartialEq>::eq,
        });
        self
    }
}
