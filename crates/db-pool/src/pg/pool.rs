//! `PgPool`: a deadpool-postgres pool with lifetimes, a recycling check,
//! statistics, retries by SQLSTATE, `explain` and index usage.
//
// Why a manager of our own around deadpool-postgres's: deadpool reports
// neither recycle failures nor connection ages to anyone, and has no
// maximum lifetime. `PgManager` delegates creating and checking connections
// to deadpool-postgres's manager and adds those: it counts, and it discards a
// connection past its (jittered) lifetime or idle timeout when it is next
// checked out; a background task also closes such connections while they sit
// idle, and tops the pool up to its minimum idle size.
//
// Waiting is deadpool's: a tokio `Semaphore`, which is FIFO, so under
// contention the longest waiter is served first and the tail of the wait
// distribution stays bounded (see the `db_pool_fairness` bench).

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brisk_core::{Backoff, ConfigError, SharedClock, StatsReport, StatsSource, SystemClock};
use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool_postgres::{ClientWrapper, ManagerConfig, RecyclingMethod};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::{mask_url, sql_context};
use crate::histogram::{Histogram, LatencySummary};
use crate::stats::{QueryStats, QueryStatsConfig, SlowQuery, StatementStats};
use crate::{Error, RetryClass, classify_sqlstate};

/// The check run on a connection each time it is checked out again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Recycle {
    /// The default: cheap, and it notices a server restart. No round trip
    /// for a connection returned less than
    /// [`ping_after_idle`](PgPoolBuilder::ping_after_idle) ago (500 ms by
    /// default; the `aliveBypassWindow` of `HikariCP`), only whether its socket is
    /// closed; a round trip (an empty query, a pre-ping) for one idle
    /// longer; and a `ROLLBACK` (which is also a ping) for one whose caller
    /// may have left a transaction open: it ran `batch_execute` with SQL
    /// that mentions `BEGIN` or `START`, a statement starting with one of
    /// them, or used the raw [`PgConn::client`]. A connection that fails the
    /// check is replaced without the caller seeing an error. Transactions
    /// begun through [`PgConn::transaction`] are rolled back when dropped.
    #[default]
    Auto,
    /// Only whether the connection's socket is closed: never a round trip.
    /// A server restart closes every connection, so it is usually noticed
    /// on the next checkout; a silently dead network only by the first
    /// query; a transaction opened by hand and left open stays open.
    Fast,
    /// A round trip (an empty query) on every checkout: a pre-ping.
    Ping,
    /// A `ROLLBACK` on every checkout: a pre-ping that also ends any
    /// transaction a caller opened by hand and left open. Costs one round
    /// trip per checkout.
    Rollback,
    /// A full session reset (`CLOSE ALL`, `RESET ALL`, `UNLISTEN *`,
    /// advisory locks released, temporary tables dropped), keeping prepared
    /// statements. Costs one round trip per checkout.
    Reset,
}

impl Recycle {
    fn method(self) -> RecyclingMethod {
        match self {
            // `Auto` runs its own round trips, after deadpool-postgres's
            // closed-socket check.
            Recycle::Auto | Recycle::Fast => RecyclingMethod::Fast,
            Recycle::Ping => RecyclingMethod::Verified,
            Recycle::Rollback => RecyclingMethod::Custom("ROLLBACK".to_owned()),
            Recycle::Reset => RecyclingMethod::Clean,
        }
    }
}

/// Whether `sql` may open a transaction that outlives the statement: a
/// conservative test (`DO $$ BEGIN … END $$` counts too), since a false
/// positive costs one `ROLLBACK` round trip at the next checkout and a
/// false negative leaves a transaction open.
fn may_open_transaction(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    ["begin", "start"].iter().any(|word| {
        bytes
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    })
}

/// A pooled connection: deadpool-postgres's client, plus what the
/// [`Recycle::Auto`] check needs.
pub(crate) struct PooledClient {
    client: ClientWrapper,
    /// When it was opened (the pool's clock): its lifetime counts from here.
    created: Instant,
    /// When it was last returned to the pool (the pool's clock): its idle
    /// time counts from here.
    returned: Instant,
    /// The caller may have left a transaction open.
    dirty: AtomicBool,
}

impl std::ops::Deref for PooledClient {
    type Target = ClientWrapper;

    fn deref(&self) -> &ClientWrapper {
        &self.client
    }
}

impl std::ops::DerefMut for PooledClient {
    fn deref_mut(&mut self) -> &mut ClientWrapper {
        &mut self.client
    }
}

#[derive(Clone, Debug)]
struct Settings {
    max_size: usize,
    min_idle: usize,
    wait_timeout: Duration,
    create_timeout: Duration,
    recycle_timeout: Duration,
    max_lifetime: Duration,
    lifetime_jitter: Duration,
    idle_timeout: Duration,
    recycle: Recycle,
    ping_after_idle: Duration,
    clock: SharedClock,
    statement_cache_capacity: usize,
    application_name: String,
    query_stats: QueryStatsConfig,
    retry: Backoff,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_size: 20,
            min_idle: 2,
            wait_timeout: Duration::from_secs(30),
            create_timeout: Duration::from_secs(10),
            recycle_timeout: Duration::from_secs(5),
            max_lifetime: Duration::from_secs(3600),
            lifetime_jitter: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(600),
            recycle: Recycle::default(),
            ping_after_idle: Duration::from_millis(500),
            clock: SystemClock::shared(),
            statement_cache_capacity: 256,
            application_name: "brisk".to_owned(),
            query_stats: QueryStatsConfig::default(),
            retry: default_retry(),
        }
    }
}

fn default_retry() -> Backoff {
    Backoff::builder()
        .base(Duration::from_millis(20))
        .cap(Duration::from_secs(2))
        .max_attempts(6)
        .build()
        .unwrap_or_default()
}

/// Builds a [`PgPool`]; every setting has a default, and no timeout is off.
///
/// ```
/// use std::time::Duration;
/// use brisk_db_pool::{PgPool, Recycle};
///
/// let builder = PgPool::builder()
///     .url("postgres://app@127.0.0.1:5432/app")
///     .max_size(30)
///     .min_idle(4)
///     .wait_timeout(Duration::from_secs(5))
///     .recycle(Recycle::Ping);
/// // `builder.build().await?` validates, connects and pre-warms.
/// let err = PgPool::builder().url("postgres://x/db").max_size(0);
/// # drop((builder, err));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct PgPoolBuilder {
    url: Option<String>,
    settings: Settings,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
    #[cfg(not(feature = "tls"))]
    tls: (),
}

/// deadpool-postgres's manager, with TLS when the `tls` feature is on.
#[cfg(not(feature = "tls"))]
fn manager(
    config: tokio_postgres::Config,
    recycling_method: RecyclingMethod,
    _tls: (),
) -> Result<deadpool_postgres::Manager, Error> {
    Ok(deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig { recycling_method },
    ))
}

/// deadpool-postgres's manager, connecting through rustls (`sslmode=prefer`
/// falls back to plain TCP when the server offers no TLS).
#[cfg(feature = "tls")]
fn manager(
    config: tokio_postgres::Config,
    recycling_method: RecyclingMethod,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<deadpool_postgres::Manager, Error> {
    let client_config = match tls {
        Some(custom) => (*custom).clone(),
        None => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system certificate rustls cannot parse is skipped, as
                // every rustls client does.
                let _ = roots.add(cert);
            }
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| ConfigError::new("pool.tls_config", e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
    };
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_config);
    Ok(deadpool_postgres::Manager::from_config(
        config,
        tls,
        ManagerConfig { recycling_method },
    ))
}

impl PgPoolBuilder {
    /// The server and database: `postgres://user:password@host:port/db?…`
    /// (libpq key/value strings work too). Default: the `DATABASE_URL`
    /// environment variable; `build` fails naming `pool.url` if neither is
    /// set.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The most connections open at once. Default 20. Connections above
    /// [`min_idle`](Self::min_idle) are opened on demand and closed again by
    /// the idle timeout, so a "pool of 20 with 10 overflow" is
    /// `max_size(30)`.
    pub fn max_size(mut self, n: usize) -> Self {
        self.settings.max_size = n;
        self
    }

    /// Connections opened at start (pre-warmed) and kept open while idle.
    /// Default 2; at most `max_size`.
    pub fn min_idle(mut self, n: usize) -> Self {
        self.settings.min_idle = n;
        self
    }

    /// How long a checkout waits for a free connection before failing with
    /// [`Error::PoolTimeout`]. Default 30 s.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.settings.wait_timeout = timeout;
        self
    }

    /// How long opening a connection may take (also the TCP connect
    /// timeout). Default 10 s.
    pub fn create_timeout(mut self, timeout: Duration) -> Self {
        self.settings.create_timeout = timeout;
        self
    }

    /// How long the recycling check may take. Default 5 s.
    pub fn recycle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.recycle_timeout = timeout;
        self
    }

    /// A connection older than this (minus a random part of the jitter,
    /// different per connection) is closed instead of reused. Default 1 h.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.max_lifetime = lifetime;
        self
    }

    /// Spreads connection lifetimes over `max_lifetime - jitter ..=
    /// max_lifetime` so they do not all reconnect at once. Default 5 min;
    /// less than `max_lifetime`.
    pub fn lifetime_jitter(mut self, jitter: Duration) -> Self {
        self.settings.lifetime_jitter = jitter;
        self
    }

    /// A connection idle this long is closed (down to `min_idle`). Default
    /// 10 min.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// The check run when a connection is checked out again. Default
    /// [`Recycle::Auto`]: no round trip for a connection used within
    /// [`ping_after_idle`](Self::ping_after_idle), a ping for one idle
    /// longer, a `ROLLBACK` for one that may hold a transaction left open.
    /// [`Recycle::Rollback`] pings and rolls back on every checkout, for one
    /// round trip each.
    pub fn recycle(mut self, recycle: Recycle) -> Self {
        self.settings.recycle = recycle;
        self
    }

    /// Under [`Recycle::Auto`], a connection returned to the pool at least
    /// this long ago is pinged (one round trip) before it is handed out, so
    /// a server restart or a dead network is noticed at checkout, not by
    /// the caller's query; one used more recently is only checked for a
    /// closed socket. Default 500 ms (the `aliveBypassWindow` of `HikariCP`); zero
    /// pings on every checkout.
    pub fn ping_after_idle(mut self, window: Duration) -> Self {
        self.settings.ping_after_idle = window;
        self
    }

    /// The clock that measures connection lifetimes, idle times and
    /// [`ping_after_idle`](Self::ping_after_idle).
    /// Default: the system clock; tests pass a
    /// [`ManualClock`](brisk_core::ManualClock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.settings.clock = clock;
        self
    }

    /// Prepared statements kept per connection (`prepare_cached`); the cache
    /// is emptied when it grows past this. Default 256.
    pub fn statement_cache_capacity(mut self, n: usize) -> Self {
        self.settings.statement_cache_capacity = n;
        self
    }

    /// The `application_name` connections report, unless the URL sets one.
    /// Default `brisk`.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.settings.application_name = name.into();
        self
    }

    /// The TLS settings (feature `tls`): trusted roots, client certificates.
    /// Default: rustls with ring and the system's root certificates. TLS is
    /// used as the URL's `sslmode` says (`prefer` by default).
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls = Some(Arc::new(config));
        self
    }

    /// Queries at least this slow go into the slow-query log. Default 100 ms.
    pub fn slow_query_threshold(mut self, threshold: Duration) -> Self {
        self.settings.query_stats.slow_threshold = threshold;
        self
    }

    /// How many of the slowest queries the log keeps. Default 20.
    pub fn slow_query_log_size(mut self, n: usize) -> Self {
        self.settings.query_stats.slow_top_n = n;
        self
    }

    /// The retry policy of [`PgPool::transaction_with_retry`] and
    /// [`PgPool::query_idempotent`]. Default: base 20 ms, cap 2 s, 6
    /// attempts.
    pub fn retry(mut self, backoff: Backoff) -> Self {
        self.settings.retry = backoff;
        self
    }

    fn validate(&self) -> Result<tokio_postgres::Config, Error> {
        let s = &self.settings;
        let positive = [
            ("pool.wait_timeout", s.wait_timeout),
            ("pool.create_timeout", s.create_timeout),
            ("pool.recycle_timeout", s.recycle_timeout),
            ("pool.max_lifetime", s.max_lifetime),
            ("pool.idle_timeout", s.idle_timeout),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
            return Err(ConfigError::new(*field, "must be greater than zero: no timeout is off").into());
        }
        if s.max_size == 0 {
            return Err(ConfigError::new("pool.max_size", "must be at least 1").into());
        }
        if s.min_idle > s.max_size {
            return Err(ConfigError::new(
                "pool.min_idle",
                format!("must be at most `max_size` ({}), got {}", s.max_size, s.min_idle),
            )
            .into());
        }
        if s.lifetime_jitter >= s.max_lifetime {
            return Err(ConfigError::new(
                "pool.lifetime_jitter",
                format!(
                    "must be less than `max_lifetime` ({:?}), got {:?}",
                    s.max_lifetime, s.lifetime_jitter
                ),
            )
            .into());
        }
        let url = match &self.url {
            Some(url) => url.clone(),
            None => std::env::var("DATABASE_URL").map_err(|_| {
                ConfigError::new(
                    "pool.url",
                    "is not set, and neither is the DATABASE_URL environment variable",
                )
            })?,
        };
        let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| Error::InvalidUrl {
            url: mask_url(&url),
            reason: e.to_string(),
        })?;
        if config.get_hosts().is_empty() {
            return Err(Error::InvalidUrl {
                url: mask_url(&url),
                reason: "it names no host".to_owned(),
            });
        }
        #[cfg(not(feature = "tls"))]
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(ConfigError::new(
                "pool.url",
                "asks for sslmode=require, but this build of brisk-db-pool has no TLS: enable its `tls` feature",
            )
            .into());
        }
        config.connect_timeout(s.create_timeout);
        if config.get_application_name().is_none() {
            config.application_name(&s.application_name);
        }
        Ok(config)
    }

    /// Checks the settings, connects, and opens `min_idle` connections (at
    /// least one, so a wrong URL fails here, not at the first query).
    /// Needs a tokio runtime (with the time driver).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the field for a bad setting,
    /// [`Error::InvalidUrl`] for a URL that does not parse,
    /// [`Error::DatabaseMissing`] when the server has no such database, and
    /// [`Error::Connect`] when the server cannot be reached or refuses the
    /// login.
    pub async fn build(self) -> Result<PgPool, Error> {
        let config = self.validate()?;
        let s = self.settings;
        let server = server_name(&config);
        let database = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_owned();
        let counters = Arc::new(Counters::default());
        let manager = PgManager {
            inner: manager(config, s.recycle.method(), self.tls)?,
            counters: Arc::clone(&counters),
            recycle: s.recycle,
            ping_after_idle: s.ping_after_idle,
            clock: Arc::clone(&s.clock),
            max_lifetime: s.max_lifetime,
            lifetime_jitter: s.lifetime_jitter,
            idle_timeout: s.idle_timeout,
            statement_cache_capacity: s.statement_cache_capacity,
            hasher: std::collections::hash_map::RandomState::new(),
        };
        let pool = managed::Pool::builder(manager)
            .max_size(s.max_size)
            .wait_timeout(Some(s.wait_timeout))
            .create_timeout(Some(s.create_timeout))
            .recycle_timeout(Some(s.recycle_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| ConfigError::new("pool", e.to_string()))?;
        let shared = Arc::new(Shared {
            query_stats: QueryStats::new(s.query_stats),
            wait: Histogram::default(),
            counters,
            server,
            database,
            settings: s,
        });
        let pool = PgPool { pool, shared };
        pool.warm_up(pool.shared.settings.min_idle.max(1)).await?;
        spawn_maintenance(&pool);
        Ok(pool)
    }
}

fn server_name(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

#[derive(Debug, Default)]
struct Counters {
    created: AtomicU64,
    connect_failures: AtomicU64,
    recycle_failures: AtomicU64,
    expired: AtomicU64,
    timeouts: AtomicU64,
    retries: AtomicU64,
    pings: AtomicU64,
    rollbacks: AtomicU64,
}

struct PgManager {
    inner: deadpool_postgres::Manager,
    counters: Arc<Counters>,
    recycle: Recycle,
    ping_after_idle: Duration,
    clock: SharedClock,
    max_lifetime: Duration,
    lifetime_jitter: Duration,
    idle_timeout: Duration,
    statement_cache_capacity: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl PgManager {
    /// This connection's lifetime: `max_lifetime` minus a share of the
    /// jitter drawn from its creation instant (stable per connection).
    fn lifetime_of(&self, client: &PooledClient) -> Duration {
        let mut h = self.hasher.build_hasher();
        std::hash::Hash::hash(&client.created, &mut h);
        let fraction = u32::try_from(h.finish() % 1024).unwrap_or(0);
        self.max_lifetime - self.lifetime_jitter * fraction / 1024
    }

    /// Past its lifetime, or idle (in the pool) past the idle timeout; both
    /// on the pool's clock.
    fn expired(&self, client: &PooledClient) -> bool {
        self.clock.elapsed(client.created) >= self.lifetime_of(client)
            || self.clock.elapsed(client.returned) >= self.idle_timeout
    }

    /// [`Recycle::Auto`]'s round trips, after the closed-socket check: a
    /// `ROLLBACK` if the caller may have left a transaction open, else a
    /// ping if the connection sat idle past the window.
    async fn auto_check(&self, client: &mut PooledClient) -> Result<(), tokio_postgres::Error> {
        if client.dirty.load(Ordering::Relaxed) {
            self.counters.rollbacks.fetch_add(1, Ordering::Relaxed);
            client.client.simple_query("ROLLBACK").await?;
            client.dirty.store(false, Ordering::Relaxed);
        } else if self.clock.elapsed(client.returned) >= self.ping_after_idle {
            self.counters.pings.fetch_add(1, Ordering::Relaxed);
            client.client.simple_query("").await?;
        }
        Ok(())
    }
}

impl managed::Manager for PgManager {
    type Type = PooledClient;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<PooledClient, tokio_postgres::Error> {
        let result = self.inner.create().await;
        let counter = if result.is_ok() {
            &self.counters.created
        } else {
            &self.counters.connect_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        Ok(PooledClient {
            client: result?,
            created: now,
            returned: now,
            dirty: AtomicBool::new(false),
        })
    }

    async fn recycle(
        &self,
        client: &mut PooledClient,
        metrics: &Metrics,
    ) -> RecycleResult<tokio_postgres::Error> {
        if self.expired(client) {
            self.counters.expired.fetch_add(1, Ordering::Relaxed);
            return Err(RecycleError::message("past its lifetime or idle timeout"));
        }
        let mut result = self.inner.recycle(&mut client.client, metrics).await;
        if result.is_ok() && self.recycle == Recycle::Auto {
            result = self.auto_check(client).await.map_err(RecycleError::Backend);
        }
        if result.is_err() {
            self.counters.recycle_failures.fetch_add(1, Ordering::Relaxed);
        } else if client.statement_cache.size() > self.statement_cache_capacity {
            client.statement_cache.clear();
        }
        result
    }

    fn detach(&self, client: &mut PooledClient) {
        self.inner.detach(&mut client.client);
    }
}

#[derive(Debug)]
struct Shared {
    query_stats: QueryStats,
    wait: Histogram,
    counters: Arc<Counters>,
    server: String,
    database: String,
    settings: Settings,
}

/// A pool of PostgreSQL connections; cheap to clone (clones share the
/// pool). Built with [`PgPool::builder`].
#[derive(Clone)]
pub struct PgPool {
    pool: managed::Pool<PgManager>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool")
            .field("server", &self.shared.server)
            .field("database", &self.shared.database)
            .field("status", &self.pool.status())
            .finish_non_exhaustive()
    }
}

/// Closes expired idle connections and keeps `min_idle` open, while the pool
/// lives.
fn spawn_maintenance(pool: &PgPool) {
    let weak = pool.pool.weak();
    let shared = Arc::downgrade(&pool.shared);
    let s = &pool.shared.settings;
    let interval = (s.idle_timeout.min(s.max_lifetime - s.lifetime_jitter) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(30));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let (Some(pool), Some(shared)) = (weak.upgrade(), shared.upgrade()) else {
                return;
            };
            let manager = pool.manager();
            let removed = pool.retain(|client, _| !manager.expired(client)).removed.len();
            shared
                .counters
                .expired
                .fetch_add(removed as u64, Ordering::Relaxed);
            let pg = PgPool { pool, shared };
            let status = pg.pool.status();
            let want = pg.shared.settings.min_idle.saturating_sub(status.available);
            let room = status.max_size.saturating_sub(status.size);
            if want.min(room) > 0 {
                let _ = pg.warm_up(want.min(room)).await;
            }
        }
    });
}

impl PgPool {
    /// A builder with the defaults (see each setter).
    pub fn builder() -> PgPoolBuilder {
        PgPoolBuilder::default()
    }

    /// A pool with the default settings for `url`.
    ///
    /// # Errors
    ///
    /// As for [`PgPoolBuilder::build`].
    pub async fn connect(url: &str) -> Result<PgPool, Error> {
        Self::builder().url(url).build().await
    }

    /// Opens `n` connections (holding them together, so they are new ones
    /// when fewer are idle) and returns them to the pool.
    async fn warm_up(&self, n: usize) -> Result<(), Error> {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(self.get().await?);
        }
        Ok(())
    }

    /// Checks out a connection, waiting (in FIFO order) up to the wait
    /// timeout.
    ///
    /// # Errors
    ///
    /// [`Error::PoolTimeout`] when none became free in time,
    /// [`Error::Connect`] / [`Error::DatabaseMissing`] when a new connection
    /// could not be opened, [`Error::Closed`] after [`close`](Self::close).
    pub async fn get(&self) -> Result<PgConn, Error> {
        let start = Instant::now();
        let result = self.pool.get().await;
        self.shared.wait.record(start.elapsed());
        match result {
            Ok(obj) => Ok(PgConn {
                obj,
                shared: Arc::clone(&self.shared),
            }),
            Err(e) => Err(self.pool_error(e)),
        }
    }

    fn pool_error(&self, e: managed::PoolError<tokio_postgres::Error>) -> Error {
        let server = self.shared.server.clone();
        match e {
            managed::PoolError::Timeout(managed::TimeoutType::Wait) => {
                self.shared.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                Error::PoolTimeout {
                    waited: self.shared.settings.wait_timeout,
                    max_size: self.shared.settings.max_size,
                }
            }
            managed::PoolError::Timeout(kind) => {
                self.shared.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                let (what, limit) = match kind {
                    managed::TimeoutType::Create => ("connecting", self.shared.settings.create_timeout),
                    _ => ("checking a connection", self.shared.settings.recycle_timeout),
                };
                Error::Connect {
                    server,
                    reason: format!("{what} took longer than {limit:?}"),
                    sqlstate: None,
                }
            }
            managed::PoolError::Backend(e) => {
                let sqlstate = e.code().map(|c| c.code().to_owned());
                if sqlstate.as_deref() == Some("3D000") {
                    return Error::DatabaseMissing {
                        database: self.shared.database.clone(),
                        server,
                    };
                }
                Error::Connect {
                    server,
                    reason: error_message(&e),
                    sqlstate,
                }
            }
            managed::PoolError::Closed => Error::Closed { what: "pool" },
            other => Error::Connect {
                server,
                reason: other.to_string(),
                sqlstate: None,
            },
        }
    }

    /// Runs `sql` on a pooled connection; see [`PgConn::query`].
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get) and [`PgConn::query`].
    pub async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        self.get().await?.query(sql, params).await
    }

    /// Runs `sql` and returns its one row; see [`PgConn::query_one`].
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get) and [`PgConn::query_one`].
    pub async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
        self.get().await?.query_one(sql, params).await
    }

    /// Runs `sql` and returns the number of rows it changed.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get) and [`PgConn::execute`].
    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        self.get().await?.execute(sql, params).await
    }

    /// Runs one or more `;`-separated statements without parameters.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get) and [`PgConn::batch_execute`].
    pub async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.get().await?.batch_execute(sql).await
    }

    /// Runs `sql`, retrying with the pool's backoff when the error is
    /// retryable — including a lost connection, so only for statements that
    /// are safe to run twice (reads, upserts, `ON CONFLICT DO NOTHING`).
    ///
    /// # Errors
    ///
    /// The first error of class [`RetryClass::Never`], or
    /// [`Error::RetriesExhausted`] with the last error.
    pub async fn query_idempotent(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let mut retries = self.shared.settings.retry.retries();
        loop {
            let err = match self.query(sql, params).await {
                Ok(rows) => return Ok(rows),
                Err(e) => e,
            };
            self.backoff(&mut retries, err, true).await?;
        }
    }

    /// Waits before the next retry, or returns the error to give up with.
    async fn backoff(
        &self,
        retries: &mut brisk_core::Retries,
        err: Error,
        idempotent: bool,
    ) -> Result<(), Error> {
        if !err.retry_class().may_retry(idempotent) {
            return Err(err);
        }
        match retries.next_delay() {
            Some(delay) => {
                self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(delay).await;
                Ok(())
            }
            None => Err(Error::RetriesExhausted {
                attempts: retries.attempts(),
                last: Box::new(err),
            }),
        }
    }

    /// Runs `f` in a transaction and commits it, running it again (after the
    /// pool's backoff) when it fails with a retryable error: a serialization
    /// failure (`40001`), a deadlock (`40P01`), a lock timeout (`55P03`), or
    /// a lost connection before `COMMIT` (the server rolled it back). Any
    /// other error is returned at once; a connection lost *during* `COMMIT`
    /// is [`Error::OutcomeUnknown`] and is never retried.
    ///
    /// `f` may run several times, so it should not have side effects outside
    /// the transaction.
    ///
    /// ```no_run
    /// # async fn demo(pool: &brisk_db_pool::PgPool) -> Result<(), brisk_db_pool::Error> {
    /// let balance: i64 = pool
    ///     .transaction_with_retry(async |tx| {
    ///         tx.batch_execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").await?;
    ///         tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = $1", &[&1i64]).await?;
    ///         Ok(tx.query_one("SELECT balance FROM accounts WHERE id = $1", &[&1i64]).await?.get(0))
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The first non-retryable error, [`Error::OutcomeUnknown`], or
    /// [`Error::RetriesExhausted`] with the last error.
    pub async fn transaction_with_retry<T, F>(&self, mut f: F) -> Result<T, Error>
    where
        F: AsyncFnMut(&Tx<'_>) -> Result<T, Error>,
    {
        let mut retries = self.shared.settings.retry.retries();
        loop {
            let err = match self.transaction_once(&mut f).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            // Failures before COMMIT were rolled back, so even a lost
            // connection is safe to retry here; a lost COMMIT is
            // `OutcomeUnknown`, which `may_retry(false)` refuses.
            let before_commit = !matches!(err, Error::OutcomeUnknown { .. });
            self.backoff(&mut retries, err, before_commit).await?;
        }
    }

    async fn transaction_once<T, F>(&self, f: &mut F) -> Result<T, Error>
    where
        F: AsyncFnMut(&Tx<'_>) -> Result<T, Error>,
    {
        let mut conn = self.get().await?;
        let tx = conn.transaction().await?;
        let value = f(&tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// Runs `EXPLAIN sql` with `params` and returns the plan, flagging
    /// sequential scans.
    ///
    /// # Errors
    ///
    /// As for [`query`](Self::query).
    pub async fn explain(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Plan, Error> {
        let rows = self.query(&format!("EXPLAIN {sql}"), params).await?;
        let lines: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        Ok(Plan::from_lines(lines))
    }

    /// Index-usage statistics of the current database, from
    /// `pg_stat_user_indexes` (fewest scans first: unused indexes lead).
    ///
    /// # Errors
    ///
    /// As for [`query`](Self::query).
    pub async fn index_usage(&self) -> Result<Vec<IndexUsage>, Error> {
        let rows = self
            .query(
                "SELECT schemaname::text, relname::text, indexrelname::text, idx_scan, idx_tup_read, idx_tup_fetch \
                 FROM pg_stat_user_indexes ORDER BY idx_scan, schemaname, relname, indexrelname",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| IndexUsage {
                schema: r.get(0),
                table: r.get(1),
                index: r.get(2),
                scans: r.get(3),
                tuples_read: r.get(4),
                tuples_fetched: r.get(5),
            })
            .collect())
    }

    /// A snapshot of the pool's state and counters.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let status = self.pool.status();
        let c = &self.shared.counters;
        PoolStats {
            max_size: status.max_size,
            size: status.size,
            idle: status.available,
            in_use: status.size.saturating_sub(status.available),
            waiting: status.waiting,
            wait: self.shared.wait.snapshot(),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            connections_created: c.created.load(Ordering::Relaxed),
            connect_failures: c.connect_failures.load(Ordering::Relaxed),
            recycle_failures: c.recycle_failures.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            pings: c.pings.load(Ordering::Relaxed),
            rollbacks: c.rollbacks.load(Ordering::Relaxed),
        }
    }

    /// Timing per normalised statement, most executed first.
    #[must_use]
    pub fn query_stats(&self) -> Vec<StatementStats> {
        self.shared.query_stats.statements()
    }

    /// The slowest queries at or over the slow-query threshold, slowest
    /// first.
    #[must_use]
    pub fn slow_queries(&self) -> Vec<SlowQuery> {
        self.shared.query_stats.slow_queries()
    }

    /// The slow-query threshold.
    #[must_use]
    pub fn slow_query_threshold(&self) -> Duration {
        self.shared.query_stats.threshold()
    }

    /// `host:port` of the server.
    #[must_use]
    pub fn server(&self) -> &str {
        &self.shared.server
    }

    /// Closes the pool: waiting and later checkouts fail with
    /// [`Error::Closed`]; connections close as they are returned.
    pub fn close(&self) {
        self.pool.close();
    }
}

impl StatsSource for PgPool {
    fn report_stats(&self, out: &mut StatsReport) {
        let s = self.stats();
        #[allow(clippy::cast_precision_loss)]
        let gauges = [
            (
                "brisk_db_pool_max_size",
                "Most connections the pool opens",
                s.max_size as f64,
            ),
            ("brisk_db_pool_size", "Open connections", s.size as f64),
            ("brisk_db_pool_idle", "Idle connections", s.idle as f64),
            ("brisk_db_pool_in_use", "Connections checked out", s.in_use as f64),
            (
                "brisk_db_pool_waiting",
                "Tasks waiting for a connection",
                s.waiting as f64,
            ),
        ];
        for (name, help, v) in gauges {
            let _ = out.gauge(name, help, v).label("backend", "postgres");
        }
        for (q, d) in [
            ("0.5", s.wait.p50),
            ("0.95", s.wait.p95),
            ("0.99", s.wait.p99),
            ("1", s.wait.max),
        ] {
            let _ = out
                .gauge(
                    "brisk_db_pool_wait_seconds",
                    "Time to check out a connection",
                    d.as_secs_f64(),
                )
                .label("backend", "postgres")
                .label("quantile", q);
        }
        let counters = [
            (
                "brisk_db_pool_checkouts_total",
                "Connection checkouts",
                s.wait.count,
            ),
            (
                "brisk_db_pool_timeouts_total",
                "Checkouts that timed out",
                s.timeouts,
            ),
            (
                "brisk_db_pool_connections_created_total",
                "Connections opened",
                s.connections_created,
            ),
            (
                "brisk_db_pool_connect_failures_total",
                "Failed connection attempts",
                s.connect_failures,
            ),
            (
                "brisk_db_pool_recycle_failures_total",
                "Connections that failed the recycling check",
                s.recycle_failures,
            ),
            (
                "brisk_db_pool_expired_total",
                "Connections closed for age or idleness",
                s.expired,
            ),
            (
                "brisk_db_pool_retries_total",
                "Transactions and queries retried",
                s.retries,
            ),
            (
                "brisk_db_pool_pings_total",
                "Checkouts that pinged an idle connection first",
                s.pings,
            ),
            (
                "brisk_db_pool_rollbacks_total",
                "Checkouts that rolled back a transaction left open",
                s.rollbacks,
            ),
        ];
        for (name, help, v) in counters {
            let _ = out.counter(name, help, v).label("backend", "postgres");
        }
        self.shared.query_stats.report("postgres", out);
    }
}

/// A snapshot of a [`PgPool`]'s state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The most connections the pool opens.
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open connections not checked out.
    pub idle: usize,
    /// Connections checked out.
    pub in_use: usize,
    /// Tasks waiting for a connection.
    pub waiting: usize,
    /// Checkout wait times (all checkouts, including failed ones).
    pub wait: LatencySummary,
    /// Checkouts that timed out.
    pub timeouts: u64,
    /// Connections opened.
    pub connections_created: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Connections that failed the recycling check (closed by a server
    /// restart, for example) and were replaced.
    pub recycle_failures: u64,
    /// Connections closed for their lifetime or idle timeout.
    pub expired: u64,
    /// Transactions and queries retried.
    pub retries: u64,
    /// Checkouts that pinged the connection first ([`Recycle::Auto`], idle
    /// past [`PgPoolBuilder::ping_after_idle`]).
    pub pings: u64,
    /// Checkouts that rolled back a transaction the previous caller may
    /// have left open ([`Recycle::Auto`]).
    pub rollbacks: u64,
}

/// A query plan from [`PgPool::explain`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The plan, one line per row of `EXPLAIN`'s output.
    pub lines: Vec<String>,
    /// Relations read by a sequential scan (an index may be missing).
    pub seq_scans: Vec<String>,
}

impl Plan {
    fn from_lines(lines: Vec<String>) -> Self {
        let seq_scans = lines
            .iter()
            .filter_map(|l| l.split_once("Seq Scan on ").map(|(_, rest)| rest))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
            .collect();
        Plan { lines, seq_scans }
    }

    /// Whether any node is a sequential scan.
    #[must_use]
    pub fn has_seq_scan(&self) -> bool {
        !self.seq_scans.is_empty()
    }
}

/// One index's usage, from `pg_stat_user_indexes`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexUsage {
    /// Schema.
    pub schema: String,
    /// Table.
    pub table: String,
    /// Index.
    pub index: String,
    /// Scans that used the index.
    pub scans: i64,
    /// Index entries read.
    pub tuples_read: i64,
    /// Live rows fetched through the index.
    pub tuples_fetched: i64,
}

/// The driver's message: the server's for a database error, else the
/// error's own (with its cause).
fn error_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Converts a driver error, classifying it.
pub(crate) fn pg_error(e: tokio_postgres::Error, context: Cow<'static, str>) -> Error {
    e.into_db_error(context)
}

/// Converts a driver error into [`Error::Database`], classifying it.
trait IntoDbError {
    fn into_db_error(self, context: Cow<'static, str>) -> Error;
}

impl IntoDbError for tokio_postgres::Error {
    fn into_db_error(self, context: Cow<'static, str>) -> Error {
        let sqlstate = self.code().map(|c| c.code().to_owned());
        let class = match &sqlstate {
            Some(code) => classify_sqlstate(code),
            None if self.is_closed() || is_io(&self) => RetryClass::ReconnectIfIdempotent,
            None => RetryClass::Never,
        };
        Error::Database {
            context,
            message: error_message(&self),
            sqlstate,
            class,
            source: Box::new(self),
        }
    }
}

fn is_io(e: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A failed `COMMIT`: a lost connection leaves the outcome unknown.
fn commit_error(e: tokio_postgres::Error, context: Cow<'static, str>) -> Error {
    let code = e.code().map(|c| c.code().to_owned());
    let lost = match code.as_deref() {
        Some(code) => classify_sqlstate(code) == RetryClass::OutcomeUnknown,
        None => e.is_closed() || is_io(&e),
    };
    if lost {
        Error::OutcomeUnknown {
            context,
            sqlstate: code,
            source: Box::new(e),
        }
    } else {
        e.into_db_error(context)
    }
}

/// A connection checked out of a [`PgPool`]; returned to it on drop.
/// Queries through it are timed into the pool's statistics and use the
/// connection's prepared-statement cache.
pub struct PgConn {
    obj: managed::Object<PgManager>,
    shared: Arc<Shared>,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        self.obj.returned = self.shared.settings.clock.now();
    }
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("server", &self.shared.server)
            .finish_non_exhaustive()
    }
}

/// Times `fut` as one execution of `sql` and converts its error.
async fn timed<T>(
    stats: &QueryStats,
    sql: &str,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Error> {
    let start = Instant::now();
    let result = fut.await;
    stats.record(sql, start.elapsed(), result.is_ok());
    result.map_err(|e| e.into_db_error(sql_context(sql)))
}

macro_rules! query_methods {
    ($client:ident) => {
        /// Runs `sql` (prepared once per connection and cached) with
        /// `params` and returns its rows.
        ///
        /// # Errors
        ///
        /// [`Error::Database`] with the SQLSTATE and its [`RetryClass`].
        pub async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
            self.note_statement(sql);
            let c = &self.$client;
            timed(&self.shared().query_stats, sql, async {
                let stmt = c.prepare_cached(sql).await?;
                c.query(&stmt, params).await
            })
            .await
        }

        /// Runs `sql` and returns its one row.
        ///
        /// # Errors
        ///
        /// [`Error::Database`], also when the query returns no row or more than one.
        pub async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
            self.note_statement(sql);
            let c = &self.$client;
            timed(&self.shared().query_stats, sql, async {
                let stmt = c.prepare_cached(sql).await?;
                c.query_one(&stmt, params).await
            })
            .await
        }

        /// Runs `sql` and returns its row, if any.
        ///
        /// # Errors
        ///
        /// [`Error::Database`], also when the query returns more than one row.
        pub async fn query_opt(
            &self,
            sql: &str,
            params: &[&(dyn ToSql + Sync)],
        ) -> Result<Option<Row>, Error> {
            self.note_statement(sql);
            let c = &self.$client;
            timed(&self.shared().query_stats, sql, async {
                let stmt = c.prepare_cached(sql).await?;
                c.query_opt(&stmt, params).await
            })
            .await
        }

        /// Runs `sql` and returns the number of rows it changed.
        ///
        /// # Errors
        ///
        /// [`Error::Database`] with the SQLSTATE and its [`RetryClass`].
        pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
            self.note_statement(sql);
            let c = &self.$client;
            timed(&self.shared().query_stats, sql, async {
                let stmt = c.prepare_cached(sql).await?;
                c.execute(&stmt, params).await
            })
            .await
        }

        /// Runs one or more `;`-separated statements without parameters (the
        /// simple query protocol).
        ///
        /// # Errors
        ///
        /// [`Error::Database`] with the SQLSTATE and its [`RetryClass`].
        pub async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
            self.note_script(sql);
            timed(
                &self.shared().query_stats,
                sql,
                self.$client.batch_execute(sql),
            )
            .await
        }
    };
}

impl PgConn {
    query_methods!(obj);

    fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Marks the connection for a `ROLLBACK` at its next checkout
    /// ([`Recycle::Auto`]) when it may be left inside a transaction.
    fn mark_dirty(&self) {
        self.obj.dirty.store(true, Ordering::Relaxed);
    }

    /// A prepared statement: only its start counts (`BEGIN`, `START
    /// TRANSACTION`), so long statements cost nothing to check.
    fn note_statement(&self, sql: &str) {
        let head = sql.trim_start().as_bytes();
        if [&b"begin"[..], b"start"]
            .iter()
            .any(|w| head.len() >= w.len() && head[..w.len()].eq_ignore_ascii_case(w))
        {
            self.mark_dirty();
        }
    }

    /// A script of statements: anywhere in it.
    fn note_script(&self, sql: &str) {
        if may_open_transaction(sql) {
            self.mark_dirty();
        }
    }

    /// Starts a transaction; it rolls back when dropped without
    /// [`Tx::commit`].
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if `BEGIN` fails.
    pub async fn transaction(&mut self) -> Result<Tx<'_>, Error> {
        let tx = self
            .obj
            .transaction()
            .await
            .map_err(|e| e.into_db_error(Cow::Borrowed("BEGIN")))?;
        Ok(Tx {
            tx,
            shared: &self.shared,
        })
    }

    /// The underlying client, for what these methods do not cover (e.g.
    /// `copy_in`, `prepare_typed_cached`). Its queries are not timed, and
    /// under [`Recycle::Auto`] the connection is rolled back at its next
    /// checkout, since what it ran is not known.
    #[must_use]
    pub fn client(&self) -> &ClientWrapper {
        self.mark_dirty();
        &self.obj.client
    }

    /// The underlying client, mutably (for its own `transaction()`); as for
    /// [`client`](Self::client).
    pub fn client_mut(&mut self) -> &mut ClientWrapper {
        self.mark_dirty();
        &mut self.obj.client
    }

    pub(crate) fn record(&self, sql: &str, elapsed: Duration, ok: bool) {
        self.shared.query_stats.record(sql, elapsed, ok);
    }
}

/// A transaction on a [`PgConn`]; rolls back when dropped without
/// [`commit`](Self::commit).
pub struct Tx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    shared: &'a Shared,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("server", &self.shared.server)
            .finish_non_exhaustive()
    }
}

impl<'a> Tx<'a> {
    query_methods!(tx);

    fn shared(&self) -> &Shared {
        self.shared
    }

    // Inside a transaction that rolls back when dropped: nothing to note.
    #[allow(clippy::unused_self)]
    fn note_statement(&self, _sql: &str) {}

    #[allow(clippy::unused_self)]
    fn note_script(&self, _sql: &str) {}

    /// Commits.
    ///
    /// # Errors
    ///
    /// [`Error::OutcomeUnknown`] if the connection was lost during `COMMIT`
    /// (it may or may not have committed); [`Error::Database`] otherwise
    /// (e.g. a serialization failure at commit, which rolled back).
    pub async fn commit(self) -> Result<(), Error> {
        let start = Instant::now();
        let result = self.tx.commit().await;
        self.shared
            .query_stats
            .record("COMMIT", start.elapsed(), result.is_ok());
        result.map_err(|e| commit_error(e, Cow::Borrowed("COMMIT")))
    }

    /// Rolls back.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if `ROLLBACK` fails (the server rolls back anyway
    /// when the connection is gone).
    pub async fn rollback(self) -> Result<(), Error> {
        self.tx
            .rollback()
            .await
            .map_err(|e| e.into_db_error(Cow::Borrowed("ROLLBACK")))
    }

    /// The underlying transaction, for what these methods do not cover (e.g.
    /// `copy_in`). Its queries are not timed.
    #[must_use]
    pub fn inner(&self) -> &deadpool_postgres::Transaction<'a> {
        &self.tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_flags_seq_scans() {
        let plan = Plan::from_lines(vec![
            "Hash Join  (cost=1.00..2.00 rows=1 width=8)".into(),
            "  ->  Seq Scan on posts p  (cost=0.00..1.00 rows=1 width=8)".into(),
            "  ->  Index Scan using authors_pkey on authors a".into(),
            "  ->  Parallel Seq Scan on big  (cost=0.00..1.00)".into(),
        ]);
        assert_eq!(plan.seq_scans, ["posts", "big"]);
        assert!(plan.has_seq_scan());
    }

    #[tokio::test]
    async fn build_validates_and_names_the_field() {
        let cases: [(PgPoolBuilder, &str); 5] = [
            (
                PgPool::builder().url("postgres://h/db").max_size(0),
                "pool.max_size",
            ),
            (
                PgPool::builder().url("postgres://h/db").max_size(2).min_idle(3),
                "pool.min_idle",
            ),
            (
                PgPool::builder()
                    .url("postgres://h/db")
                    .wait_timeout(Duration::ZERO),
                "pool.wait_timeout",
            ),
            (
                PgPool::builder()
                    .url("postgres://h/db")
                    .idle_timeout(Duration::ZERO),
                "pool.idle_timeout",
            ),
            (
                PgPool::builder()
                    .url("postgres://h/db")
                    .max_lifetime(Duration::from_secs(10))
                    .lifetime_jitter(Duration::from_secs(10)),
                "pool.lifetime_jitter",
            ),
        ];
        for (builder, field) in cases {
            match builder.build().await {
                Err(Error::Config(e)) => assert_eq!(e.field(), field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let bad = PgPool::builder()
            .url("postgres://u:pw@h:notaport/db")
            .build()
            .await;
        match bad {
            Err(Error::InvalidUrl { url, .. }) => assert_eq!(url, "postgres://u:***@h:notaport/db"),
            other => panic!("{other:?}"),
        }
    }
}
