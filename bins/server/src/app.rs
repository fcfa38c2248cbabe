//! The composed service: every component, built once from the settings and
//! shared by the handlers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use brisk_cache::{Cache, MemSize, NamespaceConfig, TieredCache};
use brisk_core::{ContentHash, PostLimits, StatsSource, Timestamp};
use brisk_db_pool::{BatchWriter, PgPool, SqliteStore, Store};
use brisk_monitor::{CheckOutcome, HealthChecks, History, Monitor, Operation, SystemSampler};
use brisk_pattern_matcher::{Dictionary, Matcher};
use brisk_rate_limiter::{KeySource, Quota, RateLimitLayer};
use brisk_ws_hub::{Hub, RedisFanout};
use serde::{Deserialize, Serialize};

use crate::config::{Database, Settings};
use crate::db::{self, AlertRow, PostRow};
use crate::generate::{self, GenPipeline, Model};
use crate::limits::SharedLimits;
use crate::llm::Llm;
use crate::seed;
use crate::train::Trainer;

/// The cache namespace of analyses.
pub(crate) const ANALYSIS_NS: &str = "analysis";
/// Every cache namespace, for stats and invalidation.
pub(crate) const NAMESPACES: &[&str] = &[ANALYSIS_NS, GENERATION_NS];
/// The cache namespace of seeded generations (deterministic for a model version).
pub(crate) const GENERATION_NS: &str = "generation";

/// A cached value: an analysis, or a seeded generation's response JSON.
#[derive(Clone, Debug)]
pub(crate) enum Cached {
    Analysis(Arc<CachedAnalysis>),
    Generation(Arc<str>),
}

/// How a cached value travels to Redis (postcard: the borrowed and the
/// owned form encode alike).
#[derive(Serialize)]
enum CachedRef<'a> {
    Analysis {
        json: &'a str,
        score: f64,
        relevant: bool,
        entities: Vec<&'a str>,
        signals: &'a str,
    },
    Generation(&'a str),
}

/// The owned form of [`CachedRef`].
#[derive(Deserialize)]
enum CachedOwned {
    Analysis {
        json: String,
        score: f64,
        relevant: bool,
        entities: Vec<String>,
        signals: String,
    },
    Generation(String),
}

impl Serialize for Cached {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cached::Analysis(a) => CachedRef::Analysis {
                json: &a.json,
                score: a.score,
                relevant: a.relevant,
                entities: a.entities.iter().map(|e| &**e).collect(),
                signals: &a.signals,
            },
            Cached::Generation(g) => CachedRef::Generation(g),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Cached {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match CachedOwned::deserialize(d)? {
            CachedOwned::Analysis {
                json,
                score,
                relevant,
                entities,
                signals,
            } => Cached::Analysis(Arc::new(CachedAnalysis {
                json: json.into_boxed_str(),
                score,
                relevant,
                entities: entities.into_iter().map(Arc::from).collect(),
                signals: signals.into_boxed_str(),
            })),
            CachedOwned::Generation(g) => Cached::Generation(Arc::from(g)),
        })
    }
}

/// Where a cached answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hit {
    /// Computed now.
    Miss,
    /// This process's cache.
    L1,
    /// Redis: computed by another process (or before a restart).
    L2,
}

impl Hit {
    /// The `"cached"` member and, for a hit, `"cache_tier"`, with a
    /// trailing comma: the start of a JSON object's members.
    pub(crate) fn members(self) -> &'static str {
        match self {
            Hit::Miss => "\"cached\":false,",
            Hit::L1 => "\"cached\":true,\"cache_tier\":\"l1\",",
            Hit::L2 => "\"cached\":true,\"cache_tier\":\"l2\",",
        }
    }
}

/// The Redis L2 of both namespaces (`REDIS_URL`).
#[derive(Debug)]
pub(crate) struct Tiered {
    pub(crate) analysis: TieredCache<ContentHash, Cached>,
    pub(crate) generation: TieredCache<ContentHash, Cached>,
}

impl MemSize for Cached {
    fn heap_size(&self) -> usize {
        match self {
            Cached::Analysis(a) => a.mem_size(),
            Cached::Generation(g) => g.len(),
        }
    }
}

/// What the server failed to start on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database {path}: {source}")]
    Database {
        /// The SQLite file or the server (without its password).
        path: String,
        /// The cause.
        source: brisk_db_pool::Error,
    },
    /// The dictionary file could not be read or is invalid.
    #[error("dictionary {path}: {reason}")]
    Dictionary {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A component refused its configuration.
    #[error("{component}: {reason}")]
    Component {
        /// Which component.
        component: &'static str,
        /// Why.
        reason: String,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn component(component: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> StartError {
    move |e| StartError::Component {
        component,
        reason: e.to_string(),
    }
}

/// One analysis, as cached: the response JSON and what ingest needs.
#[derive(Debug)]
pub(crate) struct CachedAnalysis {
    pub(crate) json: Box<str>,
    pub(crate) score: f64,
    pub(crate) relevant: bool,
    pub(crate) entities: Vec<Arc<str>>,
    pub(crate) signals: Box<str>,
}

impl MemSize for CachedAnalysis {
    fn heap_size(&self) -> usize {
        self.json.len() + self.signals.len() + self.entities.iter().map(|e| e.len() + 16).sum::<usize>()
    }
}

/// What ingest needs of a post's analysis: whether it raises alerts, and
/// what goes into them.
#[derive(Debug)]
pub(crate) struct PostRelevance {
    pub(crate) score: f64,
    pub(crate) relevant: bool,
    pub(crate) entities: Vec<Arc<str>>,
    pub(crate) signals: Box<str>,
}

/// The entities `r` names, each once, in the order first found.
fn distinct_entities(r: &brisk_pattern_matcher::Relevance) -> Vec<Arc<str>> {
    let mut entities: Vec<Arc<str>> = Vec::new();
    for e in &r.entities {
        if !entities.contains(&e.entity) {
            entities.push(Arc::clone(&e.entity));
        }
    }
    entities
}

/// The part of the analysis keys that stands for the dictionary.
fn dictionary_hash(source: &str) -> u64 {
    #[allow(clippy::cast_possible_truncation)] // the low half of the hash is enough
    let low = ContentHash::of_parts(&[b"brisk-dictionary/1".as_slice(), source.as_bytes()]).as_u128() as u64;
    low
}

/// The dictionary's text as last loaded, for `GET /api/dictionary`.
#[derive(Clone, Debug)]
pub(crate) struct DictionaryText {
    pub(crate) source: String,
    pub(crate) format: &'static str,
    pub(crate) version: u64,
    pub(crate) loaded_at: Timestamp,
}

/// The shared state of every handler.
pub(crate) type AppState = Arc<App>;

/// Every component.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) settings: Settings,
    pub(crate) store: Store,
    pub(crate) posts: BatchWriter<PostRow>,
    pub(crate) alerts: BatchWriter<AlertRow>,
    pub(crate) cache: Cache<ContentHash, Cached>,
    pub(crate) analysis: Cache<ContentHash, Cached>,
    pub(crate) generation: Cache<ContentHash, Cached>,
    pub(crate) matcher: Matcher,
    pub(crate) dictionary: Mutex<DictionaryText>,
    /// Serialises dictionary updates (parse, reload, save).
    pub(crate) dictionary_update: tokio::sync::Mutex<()>,
    /// A hash of the dictionary's text: part of every analysis key, so a
    /// reload changes every key, and processes with the same dictionary
    /// share analyses through Redis.
    pub(crate) dict_version: AtomicU64,
    pub(crate) monitor: Monitor,
    pub(crate) http: Operation,
    pub(crate) history: Arc<History>,
    pub(crate) health: Arc<HealthChecks>,
    pub(crate) hub: Hub,
    pub(crate) limits: Option<RateLimitLayer>,
    pub(crate) limit_classes: Vec<(&'static str, u64)>,
    pub(crate) system: Arc<SystemSampler>,
    pub(crate) post_limits: PostLimits,
    pub(crate) started: Instant,
    pub(crate) db_reads_in_use: Arc<AtomicUsize>,
    pub(crate) alerts_raised: AtomicU64,
    pub(crate) posts_ingested: AtomicU64,
    pub(crate) model: Arc<Model>,
    pub(crate) generator: GenPipeline,
    /// Teaches ingested batches to `model` in the background.
    pub(crate) trainer: Trainer,
    /// Set once the Redis fan-out is attached (`REDIS_URL`).
    /// Shared with the Redis health check.
    pub(crate) fanout: Arc<OnceLock<RedisFanout>>,
    /// The Redis L2 behind `analysis` and `generation` (`REDIS_URL`).
    pub(crate) tiered: Option<Arc<Tiered>>,
    /// Per-client limits shared through Redis (`REDIS_URL`), with `limits`
    /// as the local fallback.
    pub(crate) shared_limits: Option<SharedLimits>,
    /// The LLM backend (`LLM_BASE_URL`).
    pub(crate) llm: Option<Arc<Llm>>,
}

impl App {
    /// Opens the database, migrates, seeds the demo when empty, loads the
    /// dictionary and builds every component.
    #[allow(clippy::too_many_lines)]
    pub(crate) async fn build(settings: Settings) -> Result<AppState, StartError> {
        let db_err = |source| StartError::Database {
            path: settings.database.describe(),
            source,
        };
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| StartError::Component {
            component: "data directory",
            reason: format!("{}: {e}", settings.data_dir.display()),
        })?;
        let store = match &settings.database {
            Database::Sqlite(path) => Store::Sqlite(
                SqliteStore::builder()
                    .path(path)
                    .readers(settings.db_pool_size)
                    .cache_size_kib(settings.sqlite_cache_kib)
                    .wal_autocheckpoint_pages(settings.sqlite_wal_checkpoint_pages)
                    .slow_query_threshold(Duration::from_millis(50))
                    .build()
                    .map_err(db_err)?,
            ),
            // Requests wait at most 5 s for a connection, then 503: an
            // overloaded database sheds load instead of queueing requests.
            Database::Postgres(url) => {
                let ca = settings.database_ca_file.as_deref();
                let mut builder = PgPool::builder()
                    .url(crate::config::postgres_url(url.expose(), ca.is_some()))
                    .max_size(settings.db_pool_size.max(2))
                    .min_idle(settings.db_pool_size.clamp(1, 2))
                    .wait_timeout(Duration::from_secs(5))
                    .slow_query_threshold(Duration::from_millis(50))
                    .application_name("brisk-server");
                if let Some(path) = ca {
                    builder = builder.tls_config(tls_trusting(path)?);
                }
                Store::Postgres(builder.build().await.map_err(db_err)?)
            }
        };
        let migrations = db::migrations().map_err(|e| component("migrations")(&e))?;
        store.migrate(&migrations).await.map_err(db_err)?;
        let (posts, alerts) = db::writers(&store).map_err(db_err)?;

        let model = Arc::new(initial_model(&store, &settings).await?);
        let generator = generate::pipeline(Arc::clone(&model), settings.generate_queue_capacity)
            .map_err(|e| component("generation pipeline")(&e))?;
        let trainer = Trainer::start(Arc::clone(&model), settings.train_queue_posts)
            .map_err(|e| component("trainer")(&e))?;

        let (dict, dict_text) = load_dictionary(&settings)?;
        let matcher = Matcher::builder(dict)
            .threshold(settings.alert_threshold)
            .build()
            .map_err(|e| component("matcher")(&e))?;

        let cache_builder = Cache::<ContentHash, Cached>::builder()
            .namespace(ANALYSIS_NS, NamespaceConfig::new().ttl(Duration::from_secs(3600)))
            .namespace(
                GENERATION_NS,
                NamespaceConfig::new().ttl(Duration::from_secs(600)),
            )
            .jitter(0.1);
        let cache_builder = match settings.cache_max_bytes {
            Some(bytes) => cache_builder.max_memory_bytes(bytes),
            None => cache_builder.max_capacity(settings.cache_max_items),
        };
        let cache = cache_builder.build().map_err(|e| component("cache")(&e))?;
        let analysis = cache.namespace(ANALYSIS_NS).map_err(|e| component("cache")(&e))?;
        let generation = cache
            .namespace(GENERATION_NS)
            .map_err(|e| component("cache")(&e))?;

        let monitor = Monitor::new();
        let http = monitor.operation("http").map_err(|e| component("monitor")(&e))?;
        let history = Arc::new(
            History::builder(&monitor)
                .latency_target(Duration::from_millis(100))
                .build()
                .map_err(|e| component("monitor history")(&e))?,
        );
        let system = Arc::new(
            SystemSampler::new(&monitor, Some(settings.data_dir.clone()))
                .map_err(|e| component("monitor")(&e))?,
        );

        let hub = Hub::builder()
            .max_connections(settings.ws_max_connections)
            .client_publish(false)
            .build()
            .map_err(|e| component("ws hub")(&e))?;

        let (limits, limit_classes) = rate_limits(&settings)?;
        let shared_limits = match (&settings.redis_url, &limits) {
            (Some(url), Some(_)) => Some(
                SharedLimits::build(url.expose(), &settings.redis_prefix, &limit_classes)
                    .map_err(|e| component("rate limiter")(&e))?,
            ),
            _ => None,
        };
        let tiered = match &settings.redis_url {
            Some(url) => Some(Arc::new(tiered_cache(
                &cache,
                url.expose(),
                &settings.redis_prefix,
            )?)),
            None => None,
        };
        let llm = Llm::build(&settings).map_err(|e| component("LLM")(&e))?;

        let fanout = Arc::new(OnceLock::new());
        let health = Arc::new(
            health_checks(
                &store,
                &settings,
                Arc::clone(&fanout),
                tiered.clone(),
                shared_limits.clone(),
                llm.clone(),
            )
            .map_err(|e| component("health checks")(&e))?,
        );

        let store_source: Arc<dyn StatsSource> = Arc::new(store.clone());
        monitor.register("db", store_source);

        let app = Arc::new(App {
            post_limits: PostLimits::default()
                .max_text_chars(settings.max_text_chars)
                .max_field_chars(256),
            dict_version: AtomicU64::new(dictionary_hash(&dict_text.source)),
            dictionary: Mutex::new(dict_text),
            dictionary_update: tokio::sync::Mutex::new(()),
            settings,
            store,
            posts,
            alerts,
            cache,
            analysis,
            generation,
            matcher,
            monitor,
            http,
            history,
            health,
            hub,
            limits,
            limit_classes,
            system,
            started: Instant::now(),
            db_reads_in_use: Arc::new(AtomicUsize::new(0)),
            alerts_raised: AtomicU64::new(0),
            posts_ingested: AtomicU64::new(0),
            model,
            generator,
            trainer,
            fanout,
            tiered,
            shared_limits,
            llm,
        });
        app.register_sources();
        Ok(app)
    }

    fn register_sources(self: &Arc<Self>) {
        struct Sources(std::sync::Weak<App>);
        impl StatsSource for Sources {
            fn report_stats(&self, out: &mut brisk_core::StatsReport) {
                if let Some(app) = self.0.upgrade() {
                    app.posts.report_stats(out);
                    app.alerts.report_stats(out);
                    match &app.tiered {
                        // The L1's series and the L2's (`brisk_cache_l2_*`).
                        Some(t) => t.analysis.report_stats(out),
                        None => app.cache.report_stats(out),
                    }
                    app.matcher.report_stats(out);
                    app.hub.report_stats(out);
                    app.generator.report_stats(out);
                    app.trainer.report_stats(out);
                    if let Some(llm) = &app.llm {
                        llm.client().report_stats(out);
                    }
                }
            }
        }
        self.monitor
            .register("components", Arc::new(Sources(Arc::downgrade(self))));
    }

    /// The operation timing one route (`"POST /api/posts"`); the monitor
    /// keeps one per name.
    pub(crate) fn route_op(&self, name: &str) -> Option<Operation> {
        self.monitor.operation(name).ok()
    }

    /// Runs a database read, counting it as in use and timing it as the
    /// operation `name`.
    pub(crate) async fn timed_read<T, E>(
        &self,
        name: &str,
        read: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.db_reads_in_use.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let result = read.await;
        self.db_reads_in_use.fetch_sub(1, Ordering::Relaxed);
        if let Some(op) = self.route_op(name) {
            op.record(start.elapsed(), result.is_ok());
        }
        result
    }

    /// Publishes on `topic` to this process's WebSocket clients and, with
    /// the Redis fan-out attached, to every other process's.
    pub(crate) async fn publish<T: Serialize + ?Sized>(&self, topic: &str, data: &T) {
        let result = match self.fanout.get() {
            Some(fanout) => fanout.publish(topic, data, brisk_core::Priority::Normal).await,
            None => self.hub.publish(topic, data),
        };
        if let Err(e) = result {
            tracing::warn!(topic, error = %e, "publish failed");
        }
    }

    /// The cache key of `text` under the current dictionary (its text's
    /// hash): a reload changes every key, so no stale analysis is served.
    pub(crate) fn analysis_key(&self, text: &str) -> ContentHash {
        let version = self.dict_version.load(Ordering::Acquire);
        ContentHash::of_parts(&[&version.to_le_bytes()[..], text.as_bytes()])
    }

    /// What ingest needs of `text`'s analysis (score, relevance, entities,
    /// signals): from this process's cache when `POST /api/analyze` already
    /// computed it, else scored without the structure analysis and the
    /// response JSON, and not cached: ingested texts are new, so caching
    /// them would only push the analyses clients ask for again out of the
    /// cache, and a Redis round trip per post would cost more than the
    /// scoring.
    pub(crate) fn relevance(&self, text: &str) -> PostRelevance {
        if let Some(Cached::Analysis(hit)) = self.analysis.get(&self.analysis_key(text)) {
            return PostRelevance {
                score: hit.score,
                relevant: hit.relevant,
                entities: hit.entities.clone(),
                signals: hit.signals.clone(),
            };
        }
        let r = self.matcher.score(text);
        PostRelevance {
            score: r.score,
            relevant: r.relevant,
            entities: distinct_entities(&r),
            signals: serde_json::to_string(&r.signals)
                .unwrap_or_else(|_| "[]".into())
                .into_boxed_str(),
        }
    }

    /// The analyses of `texts` for `POST /api/analyze`: from this process's
    /// cache, else (with `REDIS_URL`) from Redis in one round trip, else
    /// computed, cached here and written to Redis for the other processes.
    /// A Redis outage makes this the L1-only path; it never fails.
    pub(crate) async fn analyze_many(&self, texts: &[&str]) -> Vec<(Arc<CachedAnalysis>, Hit)> {
        let keys: Vec<ContentHash> = texts.iter().map(|t| self.analysis_key(t)).collect();
        let mut out: Vec<Option<(Arc<CachedAnalysis>, Hit)>> = keys
            .iter()
            .map(|k| match self.analysis.get(k) {
                Some(Cached::Analysis(a)) => Some((a, Hit::L1)),
                _ => None,
            })
            .collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        if missing.is_empty() {
            return out.into_iter().flatten().collect();
        }
        let tiered = self.tiered.as_deref();
        if let Some(tiered) = tiered {
            let wanted: Vec<ContentHash> = missing.iter().map(|&i| keys[i]).collect();
            let found = tiered.analysis.get_many(&wanted).await;
            for (&i, f) in missing.iter().zip(found) {
                if let Some(Cached::Analysis(a)) = f {
                    out[i] = Some((a, Hit::L2));
                }
            }
        }
        for i in missing {
            if out[i].is_some() {
                continue;
            }
            let (value, cost) = self.compute_analysis(texts[i]);
            let cached = Cached::Analysis(Arc::clone(&value));
            self.analysis.insert_with_cost(keys[i], cached.clone(), cost);
            if let Some(tiered) = tiered
                && let Err(e) = tiered.analysis.insert_l2(&keys[i], &cached).await
            {
                tracing::debug!(error = %e, "analysis not written to Redis");
            }
            out[i] = Some((value, Hit::Miss));
        }
        out.into_iter().flatten().collect()
    }

    /// A cached seeded generation: this process's, else (with `REDIS_URL`)
    /// another process's with an equal model.
    pub(crate) async fn cached_generation(&self, key: &ContentHash) -> Option<(Arc<str>, Hit)> {
        if let Some(Cached::Generation(json)) = self.generation.get(key) {
            return Some((json, Hit::L1));
        }
        match self.tiered.as_ref()?.generation.get(key).await? {
            Cached::Generation(json) => Some((json, Hit::L2)),
            Cached::Analysis(_) => None,
        }
    }

    /// Caches a seeded generation here and (with `REDIS_URL`) in Redis.
    pub(crate) async fn cache_generation(&self, key: ContentHash, json: Arc<str>, cost: u32) {
        let value = Cached::Generation(json);
        self.generation.insert_with_cost(key, value.clone(), cost);
        if let Some(tiered) = &self.tiered
            && let Err(e) = tiered.generation.insert_l2(&key, &value).await
        {
            tracing::debug!(error = %e, "generation not written to Redis");
        }
    }

    /// Analyses `text` and says how many microseconds it took.
    fn compute_analysis(&self, text: &str) -> (Arc<CachedAnalysis>, u32) {
        let start = Instant::now();
        let analysis = self.matcher.analyze(text);
        let r = &analysis.relevance;
        let entities = distinct_entities(r);
        let json = serde_json::to_string(&AnalysisOut {
            hash: format!("{:032x}", ContentHash::of(text).as_u128()),
            relevant: r.relevant,
            score: r.score,
            analysis: &analysis,
        })
        .unwrap_or_default();
        let signals = serde_json::to_string(&r.signals).unwrap_or_else(|_| "[]".into());
        let value = Arc::new(CachedAnalysis {
            json: json.into_boxed_str(),
            score: r.score,
            relevant: r.relevant,
            entities,
            signals: signals.into_boxed_str(),
        });
        let cost = u32::try_from(start.elapsed().as_micros())
            .unwrap_or(u32::MAX)
            .max(1);
        (value, cost)
    }

    /// Replaces the dictionary: compiled, swapped in for every reader, saved
    /// to the dictionary file, and the cached analyses of the old one dropped.
    pub(crate) fn install_dictionary(&self, dict: &Dictionary, source: String) -> Result<u64, String> {
        let version = self.matcher.reload(dict).map_err(|e| e.to_string())?;
        self.dict_version
            .store(dictionary_hash(&source), Ordering::Release);
        self.analysis.invalidate_all();
        let mut current = self.dictionary.lock().unwrap_or_else(PoisonError::into_inner);
        current.source = source;
        current.version = version;
        current.loaded_at = Timestamp::from_system_time(std::time::SystemTime::now());
        Ok(version)
    }
}

#[derive(Serialize)]
struct AnalysisOut<'a> {
    hash: String,
    relevant: bool,
    score: f64,
    #[serde(flatten)]
    analysis: &'a brisk_pattern_matcher::Analysis,
}

/// The dictionary file's format, from its extension.
pub(crate) fn dictionary_format(path: &std::path::Path) -> &'static str {
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        "json"
    } else {
        "toml"
    }
}

/// Parses a dictionary in `format`.
pub(crate) fn parse_dictionary(
    format: &str,
    text: &str,
) -> Result<Dictionary, brisk_pattern_matcher::DictionaryError> {
    if format == "json" {
        Dictionary::from_json_str(text)
    } else {
        Dictionary::from_toml_str(text)
    }
}

/// Loads the dictionary file, writing the demo one first when it is missing
/// (in TOML; a missing `.json` path gets the demo in memory only).
fn load_dictionary(settings: &Settings) -> Result<(Dictionary, DictionaryText), StartError> {
    let path = &settings.dictionary;
    let err = |reason: String| StartError::Dictionary {
        path: path.display().to_string(),
        reason,
    };
    let format = dictionary_format(path);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if format == "toml" {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
                }
                std::fs::write(path, seed::DEMO_DICTIONARY).map_err(|e| err(e.to_string()))?;
                tracing::info!(path = %path.display(), "wrote the demo dictionary");
                seed::DEMO_DICTIONARY.to_owned()
            } else {
                return Err(err("the file does not exist".into()));
            }
        }
        Err(e) => return Err(err(e.to_string())),
    };
    let dict = parse_dictionary(format, &text).map_err(|e| err(e.to_string()))?;
    Ok((
        dict,
        DictionaryText {
            source: text,
            format,
            version: 1,
            loaded_at: Timestamp::from_system_time(std::time::SystemTime::now()),
        },
    ))
}

/// Per-client limits by endpoint class: `x-api-key` when given, else the
/// peer's IP. Off when the client limit is 0.
/// The client limit layer (if on) and its classes with their limits per minute.
type Limits = (Option<RateLimitLayer>, Vec<(&'static str, u64)>);

fn rate_limits(settings: &Settings) -> Result<Limits, StartError> {
    let per_minute = settings.client_rate_limit_per_minute;
    if per_minute == 0 {
        return Ok((None, Vec::new()));
    }
    let admin = settings.admin_rate_limit_per_minute;
    let classes: Vec<(&'static str, u64)> = vec![
        ("default", per_minute),
        ("ingest", per_minute),
        ("analyze", per_minute),
        ("generate", per_minute),
        ("admin", admin),
    ];
    let key = KeySource::function(|parts| crate::limits::client_key(&parts.headers, &parts.extensions));
    let mut builder = RateLimitLayer::builder().key(key).max_keys(100_000);
    for &(name, limit) in &classes {
        builder = builder.class(name, [Quota::per_minute(limit).named(name)]);
    }
    for &(prefix, class) in crate::limits::ROUTES {
        builder = builder.route(prefix, class);
    }
    let layer = builder.build().map_err(|e| component("rate limiter")(&e))?;
    Ok((Some(layer), classes))
}

/// A rustls client configuration trusting only the certificate
/// authorities of the PEM file at `path` (`DATABASE_CA_FILE`).
fn tls_trusting(path: &std::path::Path) -> Result<brisk_db_pool::rustls::ClientConfig, StartError> {
    use brisk_db_pool::rustls;

    let err = |reason: String| StartError::Component {
        component: "database CA file",
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::config::database_roots(path).map_err(err)? {
        roots
            .add(cert)
            .map_err(|e| err(format!("{}: {e}", path.display())))?;
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| err(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// PINGs Redis at `url`.
async fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if pong == "PONG" {
        Ok(())
    } else {
        Err(format!("PING answered {pong:?}"))
    }
}

/// Attaches the Redis fan-out, retrying in the background while Redis is
/// unreachable (the server serves local clients meanwhile).
pub(crate) fn spawn_fanout(app: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let url = app.settings.redis_url.as_ref()?.expose().to_owned();
    let app = Arc::clone(app);
    Some(tokio::spawn(async move {
        let mut delay = Duration::from_millis(200);
        loop {
            let attempt = RedisFanout::builder(url.clone())
                .prefix(app.settings.redis_prefix.clone())
                .attach(&app.hub)
                .await;
            match attempt {
                Ok(fanout) => {
                    tracing::info!(
                        node = fanout.node_id(),
                        "WebSocket fan-out through Redis attached"
                    );
                    let _ = app.fanout.set(fanout);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "Redis fan-out not attached");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }))
}

/// The local model: loaded from `DATA_DIR/model.bin` when the database has
/// posts and the file is a model this build reads, else trained on the
/// newest posts in the database (at most `max_model_posts`, 50,000 at most).
async fn initial_model(store: &Store, settings: &Settings) -> Result<Model, StartError> {
    let db_err = |e: db::DbError| match e {
        db::DbError::Db(source) => StartError::Database {
            path: settings.database.describe(),
            source,
        },
        other => component("database")(&other),
    };
    let cap = settings.max_model_posts;
    let path = generate::model_path(&settings.data_dir);
    let has_posts = db::count(store, "posts").await.map_err(db_err)? > 0;
    if has_posts && path.exists() {
        let p = path.clone();
        match tokio::task::spawn_blocking(move || generate::load_model(&p)).await {
            Ok(Ok((g, version))) => {
                tracing::info!(
                    path = %path.display(),
                    version,
                    posts = g.posts(),
                    "loaded the generator model"
                );
                return Ok(Model::new(g, version, cap));
            }
            Ok(Err(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "the saved model cannot be used; training afresh");
            }
            Err(e) => tracing::warn!(error = %e, "loading the saved model"),
        }
    }
    let corpus = if has_posts {
        db::recent_posts(store, cap.min(50_000)).await.map_err(db_err)?
    } else {
        Vec::new()
    };
    let g = tokio::task::spawn_blocking(move || generate::initial_model(&corpus, cap))
        .await
        .map_err(|e| component("generator")(&e))?
        .map_err(|e| component("generator")(&e))?;
    Ok(Model::new(g, 1, cap))
}

/// The Redis L2 in front of which `cache` is the L1, under
/// `PREFIX` + `cache`; Redis entries live as long as the namespace's own TTL.
fn tiered_cache(cache: &Cache<ContentHash, Cached>, url: &str, prefix: &str) -> Result<Tiered, StartError> {
    let root = TieredCache::builder(cache.clone(), url)
        .prefix(format!("{prefix}cache"))
        .namespace_l2_ttl(ANALYSIS_NS, Duration::from_secs(3600))
        .namespace_l2_ttl(GENERATION_NS, Duration::from_secs(600))
        .timeout(Duration::from_millis(250))
        .build()
        .map_err(|e| component("cache L2")(&e))?;
    Ok(Tiered {
        analysis: root
            .namespace(ANALYSIS_NS)
            .map_err(|e| component("cache L2")(&e))?,
        generation: root
            .namespace(GENERATION_NS)
            .map_err(|e| component("cache L2")(&e))?,
    })
}

fn health_checks(
    store: &Store,
    settings: &Settings,
    fanout: Arc<OnceLock<RedisFanout>>,
    tiered: Option<Arc<Tiered>>,
    shared_limits: Option<SharedLimits>,
    llm: Option<Arc<Llm>>,
) -> Result<HealthChecks, brisk_core::ConfigError> {
    let db = store.clone();
    let redis = settings.redis_url.as_ref().map(|u| u.expose().to_owned());
    HealthChecks::builder()
        .check_with("database", Duration::from_secs(2), 3, true, move || {
            let db = db.clone();
            async move {
                let backend = if db.as_postgres().is_some() {
                    "postgres"
                } else {
                    "sqlite"
                };
                // A bigint on both backends (`query_i64` reads an int8).
                match db.query_i64("SELECT CAST(1 AS BIGINT)").await {
                    Ok(1) => CheckOutcome::healthy(format!("{backend}: SELECT 1 answered")),
                    Ok(n) => CheckOutcome::unhealthy(format!("{backend}: SELECT 1 answered {n}")),
                    Err(e) => CheckOutcome::unhealthy(format!("{backend}: {e}")),
                }
            }
        })
        .check("redis", Duration::from_secs(1), move || {
            let (url, fanout) = (redis.clone(), Arc::clone(&fanout));
            let (tiered, shared) = (tiered.clone(), shared_limits.clone());
            async move {
                let Some(url) = url else {
                    return CheckOutcome::healthy("not configured: in-process cache, local limits, one node");
                };
                let fanout = match fanout.get() {
                    None => "fan-out connecting",
                    Some(f) if f.is_subscribed() => "fan-out subscribed",
                    Some(_) => "fan-out reconnecting",
                };
                let l2 = match &tiered {
                    Some(t) if t.analysis.is_circuit_open() => "cache L2 paused (L1 only)",
                    Some(_) => "cache L2 on",
                    None => "cache L2 off",
                };
                let limits = match &shared {
                    Some(l) if l.is_falling_back() => "client limits local",
                    Some(_) => "client limits shared",
                    None => "client limits off",
                };
                match ping(&url).await {
                    Ok(()) if fanout == "fan-out subscribed" && !l2.contains("paused") => {
                        CheckOutcome::healthy(format!("PONG; {fanout}; {l2}; {limits}"))
                    }
                    Ok(()) => CheckOutcome::degraded(format!("PONG; {fanout}; {l2}; {limits}")),
                    Err(e) => CheckOutcome::degraded(format!(
                        "unreachable ({e}): WebSocket events reach this process's clients only, \
                         the cache is this process's (L1), client limits are local; {fanout}"
                    )),
                }
            }
        })
        .check("llm", Duration::from_secs(1), move || {
            let llm = llm.clone();
            async move {
                match llm {
                    Some(llm) => llm.check().await,
                    None => CheckOutcome::healthy("not configured: the local model generates"),
                }
            }
        })
        .build()
}

/// Imports `--corpus` (idempotent: known ids are skipped) and trains the
/// model on it.
pub(crate) async fn import_corpus(
    app: &AppState,
    spec: &crate::corpus::CorpusSpec,
) -> Result<usize, ApiSeedError> {
    let spec_owned = spec.clone();
    let limits = app.post_limits;
    let posts = tokio::task::spawn_blocking(move || crate::corpus::read(&spec_owned, &limits))
        .await
        .map_err(|e| ApiSeedError(e.to_string()))?
        .map_err(ApiSeedError)?;
    let n = posts.len();
    for chunk in posts.chunks(crate::api::MAX_BATCH) {
        crate::api::ingest(app, chunk.to_vec(), false)
            .await
            .map_err(|e| ApiSeedError(e.to_string()))?;
    }
    drop(posts);
    // Retrain from the database: the model already holds what was there
    // before, and re-imported posts must not count twice.
    let cap = app.settings.max_model_posts;
    let corpus = db::recent_posts(&app.store, cap.min(50_000)).await?;
    let fresh = tokio::task::spawn_blocking(move || generate::initial_model(&corpus, cap))
        .await
        .map_err(|e| ApiSeedError(e.to_string()))?
        .map_err(|e| ApiSeedError(e.to_string()))?;
    app.model.replace(fresh);
    tracing::info!(posts = n, path = %spec.path.display(), "imported the corpus");
    Ok(n)
}

/// Writes the demo corpus into an empty database (the posts through the
/// batch writer, their alerts too).
pub(crate) async fn seed_if_empty(app: &AppState) -> Result<usize, ApiSeedError> {
    if !app.settings.seed_demo || db::count(&app.store, "posts").await? > 0 {
        return Ok(0);
    }
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let posts = seed::demo_posts(1_000, 0x5eed, now);
    let n = posts.len();
    crate::api::ingest(app, posts.clone(), false)
        .await
        .map_err(|e| ApiSeedError(e.to_string()))?;
    let model = Arc::clone(&app.model);
    tokio::task::spawn_blocking(move || model.train(&posts))
        .await
        .map_err(|e| ApiSeedError(e.to_string()))?
        .map_err(|e| ApiSeedError(e.to_string()))?;
    tracing::info!(posts = n, "seeded the demo corpus");
    Ok(n)
}

/// Seeding failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ApiSeedError(String);

impl From<brisk_db_pool::Error> for ApiSeedError {
    fn from(e: brisk_db_pool::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<db::DbError> for ApiSeedError {
    fn from(e: db::DbError) -> Self {
        Self(e.to_string())
    }
}
