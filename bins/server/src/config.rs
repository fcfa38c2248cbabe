//! Settings: command-line flags, environment variables (a `.env` file is
//! honoured), an optional TOML file, and defaults, in that order of
//! precedence.
//
// clap reads each flag and its environment variable into an `Option`, so
// "not given on the command line nor in the environment" is `None`; the TOML
// file fills those, and the defaults fill the rest. Every value is then
// checked once, in `Settings::resolve`, and an error names the setting by
// all three of its spellings (flag, variable, file key) so the operator can
// find it wherever it was set.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::corpus::CorpusSpec;

/// A setting that could not be used: startup stops with this message.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name} (flag --{flag}, environment {env}, file key `{key}`): {reason}")]
pub struct SettingError {
    /// The setting, as in the settings table.
    pub name: &'static str,
    /// Its flag, without the dashes.
    pub flag: &'static str,
    /// Its environment variable.
    pub env: &'static str,
    /// Its key in the TOML file.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// The command line (every flag also reads its environment variable).
// The field docs are `--help` text, printed as written: no Markdown.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Default, Parser)]
#[command(
    name = "brisk-server",
    version,
    about = "The brisk service: HTTP API, WebSocket and live dashboard",
    long_about = "The brisk service: HTTP API, WebSocket and live dashboard.\n\n\
        Settings come from flags, then environment variables (a .env file in the \
        working directory is read too), then the TOML file given with --config, \
        then the defaults. With no settings at all it listens on 127.0.0.1:8000 \
        with an SQLite database in ./data."
)]
pub struct Cli {
    /// The TOML settings file (optional).
    #[arg(long, env = "BRISK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The address to listen on [default: 127.0.0.1:8000].
    #[arg(long, env = "BRISK_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The data directory: the SQLite file and the dictionary [default: ./data].
    #[arg(long, env = "BRISK_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The database URL [default: sqlite://DATA_DIR/brisk.db].
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// A PEM file of the certificate authorities that PostgreSQL's server certificate must chain to (only these are trusted); without sslmode in DATABASE_URL, connections then use sslmode=require.
    #[arg(long, env = "DATABASE_CA_FILE", value_name = "FILE")]
    pub database_ca_file: Option<PathBuf>,
    /// Redis, shared by every server process using it: WebSocket fan-out, the L2 cache (analyses, generations) and per-client rate limits.
    #[arg(long, env = "REDIS_URL", value_name = "URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// The prefix of brisk's Redis keys and channel [default: brisk:].
    #[arg(long, env = "BRISK_REDIS_PREFIX", value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
    /// An OpenAI-compatible API's base URL, e.g. OpenAI's or Ollama's (http://HOST:11434/v1): POST /api/generate asks it first, the local model answers when it cannot.
    #[arg(long, env = "LLM_BASE_URL", value_name = "URL")]
    pub llm_base_url: Option<String>,
    /// The LLM API key (never logged).
    #[arg(long, env = "LLM_API_KEY", value_name = "KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,
    /// The LLM model name [default: gpt-4o-mini].
    #[arg(long, env = "LLM_MODEL", value_name = "NAME")]
    pub llm_model: Option<String>,
    /// Most entries in the in-process cache [default: 10000].
    #[arg(long, env = "MAX_MEMORY_CACHE_ITEMS", value_name = "N")]
    pub max_memory_cache_items: Option<String>,
    /// A memory cap for the in-process cache, in bytes (replaces the entry count).
    #[arg(long, env = "MAX_MEMORY_CACHE_BYTES", value_name = "BYTES")]
    pub max_memory_cache_bytes: Option<String>,
    /// Database connections (SQLite: reader connections) [default: 4].
    #[arg(long, env = "DATABASE_CONNECTION_POOL_SIZE", value_name = "N")]
    pub database_connection_pool_size: Option<String>,
    /// SQLite's page cache per connection (the writer and each reader), in KiB (PRAGMA cache_size); at least 64 [default: 4096].
    #[arg(long, env = "BRISK_SQLITE_CACHE_KIB", value_name = "KIB")]
    pub sqlite_cache_kib: Option<String>,
    /// Pages SQLite's write-ahead log may hold before a commit copies them into the database file (PRAGMA wal_autocheckpoint); at least 1000 [default: 16384, 64 MiB].
    #[arg(long, env = "BRISK_SQLITE_WAL_CHECKPOINT_PAGES", value_name = "PAGES")]
    pub sqlite_wal_checkpoint_pages: Option<String>,
    /// Outbound API calls per minute (the LLM) [default: 60].
    #[arg(long, env = "API_RATE_LIMIT_PER_MINUTE", value_name = "N")]
    pub api_rate_limit_per_minute: Option<String>,
    /// Requests per minute per client (API key or IP) for each API class; 0 turns client limits off [default: 6000].
    #[arg(long, env = "CLIENT_RATE_LIMIT_PER_MINUTE", value_name = "N")]
    pub client_rate_limit_per_minute: Option<String>,
    /// Requests per minute per client to admin endpoints [default: 60].
    #[arg(long, env = "ADMIN_RATE_LIMIT_PER_MINUTE", value_name = "N")]
    pub admin_rate_limit_per_minute: Option<String>,
    /// The log level or filter (`info`, `debug`, `brisk_server=debug,info`) [default: info].
    #[arg(long, env = "LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// The log format: `text` or `json` [default: text].
    #[arg(long, env = "LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// The admin token: admin endpoints need `Authorization: Bearer TOKEN`; without it they answer 403.
    #[arg(long, env = "ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The dictionary file (TOML or JSON) [default: DATA_DIR/dictionary.toml, seeded with a demo].
    #[arg(long, env = "BRISK_DICTIONARY", value_name = "FILE")]
    pub dictionary: Option<PathBuf>,
    /// Origins allowed by CORS, comma-separated (`*` for any); CORS is off when empty [default: empty].
    #[arg(long, env = "BRISK_CORS_ORIGINS", value_name = "ORIGINS")]
    pub cors_origins: Option<String>,
    /// The largest request body, in bytes [default: 8388608].
    #[arg(long, env = "BRISK_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<String>,
    /// The longest post or analysed text, in characters [default: 10000].
    #[arg(long, env = "BRISK_MAX_TEXT_CHARS", value_name = "N")]
    pub max_text_chars: Option<String>,
    /// The relevance score (0–100) from which a post raises an alert [default: 50].
    #[arg(long, env = "BRISK_ALERT_THRESHOLD", value_name = "SCORE")]
    pub alert_threshold: Option<String>,
    /// Seed the demo corpus into an empty database (a missing dictionary file always gets the demo one): `true` or `false` [default: true].
    #[arg(long, env = "BRISK_SEED_DEMO", value_name = "BOOL")]
    pub seed_demo: Option<String>,
    /// A corpus to import at startup instead of the demo: JSONL, CSV or TSV.
    #[arg(long, env = "BRISK_CORPUS", value_name = "FILE")]
    pub corpus: Option<PathBuf>,
    /// The corpus format: jsonl, csv or tsv [default: from the extension].
    #[arg(long, env = "BRISK_CORPUS_FORMAT", value_name = "FORMAT")]
    pub corpus_format: Option<String>,
    /// CSV/TSV columns as field=column, comma-separated; columns are 0-based indices or header names, e.g. `id=0,text=2` [default: text=text].
    #[arg(long, env = "BRISK_CORPUS_COLUMNS", value_name = "MAP")]
    pub corpus_columns: Option<String>,
    /// How long shutdown waits for requests in flight, e.g. `10s` [default: 10s].
    #[arg(long, env = "BRISK_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    pub shutdown_timeout: Option<String>,
    /// Most WebSocket connections [default: 10000].
    #[arg(long, env = "BRISK_WS_MAX_CONNECTIONS", value_name = "N")]
    pub ws_max_connections: Option<String>,
    /// Most posts the local generator model learns; ingested batches past it no longer grow the model [default: 100000].
    #[arg(long, env = "BRISK_MAX_MODEL_POSTS", value_name = "N")]
    pub max_model_posts: Option<String>,
    /// Jobs the generation pipeline queues at most (generate requests) [default: 16384].
    #[arg(long, env = "BRISK_GENERATE_QUEUE_CAPACITY", value_name = "N")]
    pub generate_queue_capacity: Option<String>,
    /// Ingested posts waiting at most to train the local model in the background; posts past it are not learned (counted in brisk_server_training_dropped_posts_total), ingest never waits [default: 100000].
    #[arg(long, env = "BRISK_TRAIN_QUEUE_POSTS", value_name = "N")]
    pub train_queue_posts: Option<String>,
}

/// The TOML file: the same settings, keyed by their snake-case names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_ca_file: Option<PathBuf>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    llm_base_url: Option<String>,
    llm_api_key: Option<String>,
    llm_model: Option<String>,
    max_memory_cache_items: Option<toml::Value>,
    max_memory_cache_bytes: Option<toml::Value>,
    database_connection_pool_size: Option<toml::Value>,
    sqlite_cache_kib: Option<toml::Value>,
    sqlite_wal_checkpoint_pages: Option<toml::Value>,
    api_rate_limit_per_minute: Option<toml::Value>,
    client_rate_limit_per_minute: Option<toml::Value>,
    admin_rate_limit_per_minute: Option<toml::Value>,
    log_level: Option<String>,
    log_format: Option<String>,
    admin_token: Option<String>,
    dictionary: Option<PathBuf>,
    cors_origins: Option<toml::Value>,
    max_body_bytes: Option<toml::Value>,
    max_text_chars: Option<toml::Value>,
    alert_threshold: Option<toml::Value>,
    seed_demo: Option<toml::Value>,
    corpus: Option<PathBuf>,
    corpus_format: Option<String>,
    corpus_columns: Option<String>,
    shutdown_timeout: Option<toml::Value>,
    ws_max_connections: Option<toml::Value>,
    max_model_posts: Option<toml::Value>,
    generate_queue_capacity: Option<toml::Value>,
    train_queue_posts: Option<toml::Value>,
}

/// The log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A secret: shown as `"<redacted>"` by `Debug`, so settings can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's value.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Every setting, resolved and checked. `Debug` hides secrets (the admin
/// token, the LLM key, passwords in URLs), so it is safe to log.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Settings {
    /// Where to listen. Default `127.0.0.1:8000`.
    pub listen: SocketAddr,
    /// The data directory. Default `./data`.
    pub data_dir: PathBuf,
    /// The database (from `DATABASE_URL`): an SQLite file (default
    /// `DATA_DIR/brisk.db`) or a PostgreSQL server.
    pub database: Database,
    /// `DATABASE_CA_FILE`: the certificate authorities (PEM) trusted for
    /// PostgreSQL's TLS, instead of the system's roots. Default none.
    pub database_ca_file: Option<PathBuf>,
    /// `REDIS_URL` (shown redacted): WebSocket fan-out between processes.
    pub redis_url: Option<Secret>,
    /// The prefix of brisk's Redis keys. Default `brisk:`.
    pub redis_prefix: String,
    /// `LLM_BASE_URL`: `POST /api/generate` asks this OpenAI-compatible
    /// API first, with the local model as the fallback. Default none.
    pub llm_base_url: Option<String>,
    /// `LLM_API_KEY`.
    pub llm_api_key: Option<Secret>,
    /// `LLM_MODEL`; `gpt-4o-mini` when the LLM is configured without one.
    pub llm_model: Option<String>,
    /// Most cache entries. Default 10,000.
    pub cache_max_items: u64,
    /// A cache memory cap in bytes, replacing the entry count. Default none.
    pub cache_max_bytes: Option<u64>,
    /// Database connections (SQLite readers). Default 4.
    pub db_pool_size: usize,
    /// SQLite's page cache per connection, in KiB. Default 4,096 (4 MiB):
    /// with the writer and 4 readers at most 20 MiB, where brisk-db-pool's
    /// default (16 MiB each) let a long run's RSS grow with the database
    /// up to 80 MiB; 2 MiB measured ~20% slower SQLite ingest.
    pub sqlite_cache_kib: u32,
    /// Pages SQLite's write-ahead log holds before a checkpoint. Default
    /// 16,384 (64 MiB of 4 KiB pages), where SQLite's own 1,000 made a
    /// 100k-post ingest copy hot index pages into the database file every
    /// few batches: 8.9–10.7 s against 11.6–11.9 s measured.
    pub sqlite_wal_checkpoint_pages: u32,
    /// Outbound API calls per minute. Default 60.
    pub api_rate_limit_per_minute: u64,
    /// Client requests per minute per API class; 0 is off. Default 6,000.
    pub client_rate_limit_per_minute: u64,
    /// Client requests per minute to admin endpoints. Default 60.
    pub admin_rate_limit_per_minute: u64,
    /// The log filter. Default `info`.
    pub log_level: String,
    /// The log format. Default text.
    pub log_format: LogFormat,
    /// The admin token; `None` disables admin endpoints (403).
    pub admin_token: Option<Secret>,
    /// The dictionary file. Default `DATA_DIR/dictionary.toml`.
    pub dictionary: PathBuf,
    /// CORS origins; empty is off. Default empty.
    pub cors_origins: Vec<String>,
    /// The largest request body. Default 8 MiB.
    pub max_body_bytes: usize,
    /// The longest text, in characters. Default 10,000.
    pub max_text_chars: usize,
    /// The score from which a post raises an alert. Default 50.
    pub alert_threshold: f64,
    /// Whether an empty database gets the demo corpus. Default true.
    pub seed_demo: bool,
    /// A corpus to import at startup (then no demo is seeded). Default none.
    pub corpus: Option<CorpusSpec>,
    /// How long shutdown waits for requests in flight. Default 10 s.
    pub shutdown_timeout: Duration,
    /// Most WebSocket connections. Default 10,000.
    pub ws_max_connections: usize,
    /// Most posts the local generator learns (at start and from ingest);
    /// past it ingested batches no longer grow the model. Default 100,000.
    pub max_model_posts: usize,
    /// Jobs the generation pipeline queues at most. Default 16,384.
    pub generate_queue_capacity: usize,
    /// Ingested posts queued at most for the background trainer (posts
    /// past it are not learned, and counted). Default 100,000.
    pub train_queue_posts: usize,
}

macro_rules! setting {
    ($name:literal, $flag:literal, $env:literal, $key:literal) => {
        Spelling {
            name: $name,
            flag: $flag,
            env: $env,
            key: $key,
        }
    };
}

#[derive(Clone, Copy)]
struct Spelling {
    name: &'static str,
    flag: &'static str,
    env: &'static str,
    key: &'static str,
}

impl Spelling {
    fn err(self, reason: impl Into<String>) -> SettingError {
        SettingError {
            name: self.name,
            flag: self.flag,
            env: self.env,
            key: self.key,
            reason: reason.into(),
        }
    }
}

const LISTEN: Spelling = setting!("listen address", "listen", "BRISK_LISTEN", "listen");
const DATA_DIR: Spelling = setting!("data directory", "data-dir", "BRISK_DATA_DIR", "data_dir");
const DATABASE_URL: Spelling = setting!("database", "database-url", "DATABASE_URL", "database_url");
const DATABASE_CA: Spelling = setting!(
    "database CA",
    "database-ca-file",
    "DATABASE_CA_FILE",
    "database_ca_file"
);
const REDIS_URL: Spelling = setting!("Redis", "redis-url", "REDIS_URL", "redis_url");
const REDIS_PREFIX: Spelling = setting!(
    "Redis prefix",
    "redis-prefix",
    "BRISK_REDIS_PREFIX",
    "redis_prefix"
);
const CACHE_ITEMS: Spelling = setting!(
    "cache entries",
    "max-memory-cache-items",
    "MAX_MEMORY_CACHE_ITEMS",
    "max_memory_cache_items"
);
const CACHE_BYTES: Spelling = setting!(
    "cache memory",
    "max-memory-cache-bytes",
    "MAX_MEMORY_CACHE_BYTES",
    "max_memory_cache_bytes"
);
const POOL_SIZE: Spelling = setting!(
    "database pool",
    "database-connection-pool-size",
    "DATABASE_CONNECTION_POOL_SIZE",
    "database_connection_pool_size"
);
const SQLITE_CACHE: Spelling = setting!(
    "SQLite page cache",
    "sqlite-cache-kib",
    "BRISK_SQLITE_CACHE_KIB",
    "sqlite_cache_kib"
);
const SQLITE_WAL: Spelling = setting!(
    "SQLite WAL checkpoint",
    "sqlite-wal-checkpoint-pages",
    "BRISK_SQLITE_WAL_CHECKPOINT_PAGES",
    "sqlite_wal_checkpoint_pages"
);
const API_LIMIT: Spelling = setting!(
    "outbound API limit",
    "api-rate-limit-per-minute",
    "API_RATE_LIMIT_PER_MINUTE",
    "api_rate_limit_per_minute"
);
const CLIENT_LIMIT: Spelling = setting!(
    "client rate limit",
    "client-rate-limit-per-minute",
    "CLIENT_RATE_LIMIT_PER_MINUTE",
    "client_rate_limit_per_minute"
);
const ADMIN_LIMIT: Spelling = setting!(
    "admin rate limit",
    "admin-rate-limit-per-minute",
    "ADMIN_RATE_LIMIT_PER_MINUTE",
    "admin_rate_limit_per_minute"
);
const LOG_LEVEL: Spelling = setting!("logging", "log-level", "LOG_LEVEL", "log_level");
const LOG_FORMAT: Spelling = setting!("log format", "log-format", "LOG_FORMAT", "log_format");
const ADMIN_TOKEN: Spelling = setting!("admin", "admin-token", "ADMIN_TOKEN", "admin_token");
const LLM_BASE_URL: Spelling = setting!("LLM", "llm-base-url", "LLM_BASE_URL", "llm_base_url");
const CORS: Spelling = setting!("CORS", "cors-origins", "BRISK_CORS_ORIGINS", "cors_origins");
const BODY: Spelling = setting!(
    "body limit",
    "max-body-bytes",
    "BRISK_MAX_BODY_BYTES",
    "max_body_bytes"
);
const TEXT: Spelling = setting!(
    "text limit",
    "max-text-chars",
    "BRISK_MAX_TEXT_CHARS",
    "max_text_chars"
);
const THRESHOLD: Spelling = setting!(
    "alert threshold",
    "alert-threshold",
    "BRISK_ALERT_THRESHOLD",
    "alert_threshold"
);
const SEED: Spelling = setting!("demo seeding", "seed-demo", "BRISK_SEED_DEMO", "seed_demo");
const SHUTDOWN: Spelling = setting!(
    "shutdown timeout",
    "shutdown-timeout",
    "BRISK_SHUTDOWN_TIMEOUT",
    "shutdown_timeout"
);
const WS_MAX: Spelling = setting!(
    "WebSocket connections",
    "ws-max-connections",
    "BRISK_WS_MAX_CONNECTIONS",
    "ws_max_connections"
);
const MAX_MODEL_POSTS: Spelling = setting!(
    "model size cap",
    "max-model-posts",
    "BRISK_MAX_MODEL_POSTS",
    "max_model_posts"
);
const GEN_QUEUE: Spelling = setting!(
    "generation queue",
    "generate-queue-capacity",
    "BRISK_GENERATE_QUEUE_CAPACITY",
    "generate_queue_capacity"
);
const TRAIN_QUEUE: Spelling = setting!(
    "training queue",
    "train-queue-posts",
    "BRISK_TRAIN_QUEUE_POSTS",
    "train_queue_posts"
);
const CORPUS_FORMAT: Spelling = setting!(
    "corpus format",
    "corpus-format",
    "BRISK_CORPUS_FORMAT",
    "corpus_format"
);
const CORPUS_COLUMNS: Spelling = setting!(
    "corpus columns",
    "corpus-columns",
    "BRISK_CORPUS_COLUMNS",
    "corpus_columns"
);
const CONFIG: Spelling = setting!("settings file", "config", "BRISK_CONFIG", "(none)");

/// A TOML value as the string a flag would have given.
fn file_str(v: Option<toml::Value>) -> Option<String> {
    v.map(|v| match v {
        toml::Value::String(s) => s,
        toml::Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                toml::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    })
}

fn parse_num<T: std::str::FromStr>(s: &Spelling, v: &str) -> Result<T, SettingError>
where
    T::Err: fmt::Display,
{
    v.trim()
        .replace('_', "")
        .parse::<T>()
        .map_err(|e| s.err(format!("{v:?} is not a valid number: {e}")))
}

fn positive<T: PartialOrd + Default + fmt::Display>(s: &Spelling, v: T) -> Result<T, SettingError> {
    if v > T::default() {
        Ok(v)
    } else {
        Err(s.err(format!("must be greater than zero, got {v}")))
    }
}

impl Settings {
    /// Parses the process's command line and environment (after reading a
    /// `.env` file, if any), the TOML file they name, and the defaults.
    ///
    /// # Errors
    ///
    /// A [`SettingError`] naming the first invalid setting.
    pub fn from_process() -> Result<Self, SettingError> {
        // A missing .env is normal; a malformed one is the operator's to fix.
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            return Err(CONFIG.err(format!("the .env file could not be read: {e}")));
        }
        Self::resolve(Cli::parse())
    }

    /// The settings for `cli` (flags and environment already merged by
    /// clap), completed from the TOML file it names and the defaults.
    ///
    /// # Errors
    ///
    /// A [`SettingError`] naming the first invalid setting.
    pub fn resolve(cli: Cli) -> Result<Self, SettingError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        Self::merge(cli, file)
    }

    #[allow(clippy::too_many_lines)]
    fn merge(cli: Cli, f: FileSettings) -> Result<Self, SettingError> {
        let listen_s = cli.listen.or(f.listen).unwrap_or_else(|| "127.0.0.1:8000".into());
        let listen: SocketAddr = listen_s
            .trim()
            .parse()
            .map_err(|e| LISTEN.err(format!("{listen_s:?} is not an IP address and port: {e}")))?;

        let data_dir = cli
            .data_dir
            .or(f.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        if data_dir.as_os_str().is_empty() {
            return Err(DATA_DIR.err("is empty"));
        }

        let database = match cli.database_url.or(f.database_url) {
            None => Database::Sqlite(data_dir.join("brisk.db")),
            Some(url) => parse_database(&url)?,
        };

        let database_ca_file = cli.database_ca_file.or(f.database_ca_file);
        if let Some(path) = &database_ca_file {
            if !matches!(database, Database::Postgres(_)) {
                return Err(DATABASE_CA.err("applies only to a postgres:// DATABASE_URL"));
            }
            database_roots(path).map_err(|reason| DATABASE_CA.err(reason))?;
        }

        let redis_url = cli.redis_url.or(f.redis_url);
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(REDIS_URL.err("must start with redis:// or rediss://"));
        }
        let redis_prefix = cli
            .redis_prefix
            .or(f.redis_prefix)
            .unwrap_or_else(|| "brisk:".into());
        if redis_prefix.is_empty() || redis_prefix.len() > 64 || redis_prefix.chars().any(char::is_whitespace)
        {
            return Err(REDIS_PREFIX.err("must be 1 to 64 characters without spaces"));
        }
        let llm_base_url = cli.llm_base_url.or(f.llm_base_url);
        if let Some(url) = &llm_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(LLM_BASE_URL.err("must start with http:// or https://"));
        }

        let cache_max_items = match cli.max_memory_cache_items.or(file_str(f.max_memory_cache_items)) {
            Some(v) => positive(&CACHE_ITEMS, parse_num::<u64>(&CACHE_ITEMS, &v)?)?,
            None => 10_000,
        };
        let cache_max_bytes = match cli.max_memory_cache_bytes.or(file_str(f.max_memory_cache_bytes)) {
            Some(v) => {
                let bytes = positive(&CACHE_BYTES, parse_num::<u64>(&CACHE_BYTES, &v)?)?;
                if bytes < 64 * 1024 {
                    return Err(CACHE_BYTES.err(format!("{bytes} bytes is too small; use at least 65536")));
                }
                Some(bytes)
            }
            None => None,
        };
        let db_pool_size = match cli
            .database_connection_pool_size
            .or(file_str(f.database_connection_pool_size))
        {
            Some(v) => {
                let n = positive(&POOL_SIZE, parse_num::<usize>(&POOL_SIZE, &v)?)?;
                if n > 256 {
                    return Err(POOL_SIZE.err(format!("{n} is more than the maximum of 256")));
                }
                n
            }
            None => 4,
        };
        let sqlite_cache_kib = match cli.sqlite_cache_kib.or(file_str(f.sqlite_cache_kib)) {
            Some(v) => {
                let n = parse_num::<u32>(&SQLITE_CACHE, &v)?;
                if !(64..=1 << 20).contains(&n) {
                    return Err(SQLITE_CACHE.err(format!("{n} KiB is not between 64 and 1048576")));
                }
                n
            }
            None => 4_096,
        };
        let sqlite_wal_checkpoint_pages = match cli
            .sqlite_wal_checkpoint_pages
            .or(file_str(f.sqlite_wal_checkpoint_pages))
        {
            Some(v) => {
                let n = parse_num::<u32>(&SQLITE_WAL, &v)?;
                if !(1_000..=1 << 20).contains(&n) {
                    return Err(SQLITE_WAL.err(format!("{n} pages is not between 1000 and 1048576")));
                }
                n
            }
            None => 16_384,
        };
        let api_rate_limit_per_minute = match cli
            .api_rate_limit_per_minute
            .or(file_str(f.api_rate_limit_per_minute))
        {
            Some(v) => positive(&API_LIMIT, parse_num::<u64>(&API_LIMIT, &v)?)?,
            None => 60,
        };
        let client_rate_limit_per_minute = match cli
            .client_rate_limit_per_minute
            .or(file_str(f.client_rate_limit_per_minute))
        {
            Some(v) => parse_num::<u64>(&CLIENT_LIMIT, &v)?,
            None => 6_000,
        };
        let admin_rate_limit_per_minute = match cli
            .admin_rate_limit_per_minute
            .or(file_str(f.admin_rate_limit_per_minute))
        {
            Some(v) => positive(&ADMIN_LIMIT, parse_num::<u64>(&ADMIN_LIMIT, &v)?)?,
            None => 60,
        };

        let log_level = cli.log_level.or(f.log_level).unwrap_or_else(|| "info".into());
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log_level) {
            return Err(LOG_LEVEL.err(format!("{log_level:?} is not a log filter: {e}")));
        }
        let log_format = match cli.log_format.or(f.log_format).as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(LOG_FORMAT.err(format!("{other:?} is neither `text` nor `json`"))),
        };

        let admin_token = match cli.admin_token.or(f.admin_token) {
            None => None,
            Some(t) if t.is_empty() => None,
            Some(t) => {
                if t.chars().count() < 16 {
                    return Err(ADMIN_TOKEN.err("must be at least 16 characters long"));
                }
                if !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ADMIN_TOKEN.err("must be printable ASCII without spaces"));
                }
                Some(Secret(t))
            }
        };

        let dictionary = cli
            .dictionary
            .or(f.dictionary)
            .unwrap_or_else(|| data_dir.join("dictionary.toml"));
        match dictionary.extension().and_then(|e| e.to_str()) {
            Some("toml" | "json") => {}
            _ => {
                return Err(SettingError {
                    name: "dictionaries",
                    flag: "dictionary",
                    env: "BRISK_DICTIONARY",
                    key: "dictionary",
                    reason: format!("{} must end in .toml or .json", dictionary.display()),
                });
            }
        }

        let cors_origins: Vec<String> = cli
            .cors_origins
            .or(file_str(f.cors_origins))
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        for origin in &cors_origins {
            if origin != "*"
                && (!(origin.starts_with("http://") || origin.starts_with("https://"))
                    || http::HeaderValue::from_str(origin).is_err())
            {
                return Err(CORS.err(format!("{origin:?} is not `*` or an http(s) origin")));
            }
        }

        let max_body_bytes = match cli.max_body_bytes.or(file_str(f.max_body_bytes)) {
            Some(v) => {
                let n = positive(&BODY, parse_num::<usize>(&BODY, &v)?)?;
                if n < 1024 {
                    return Err(BODY.err(format!("{n} bytes is too small; use at least 1024")));
                }
                n
            }
            None => 8 * 1024 * 1024,
        };
        let max_text_chars = match cli.max_text_chars.or(file_str(f.max_text_chars)) {
            Some(v) => positive(&TEXT, parse_num::<usize>(&TEXT, &v)?)?,
            None => 10_000,
        };
        let alert_threshold = match cli.alert_threshold.or(file_str(f.alert_threshold)) {
            Some(v) => {
                let t = parse_num::<f64>(&THRESHOLD, &v)?;
                if !(0.0..=100.0).contains(&t) {
                    return Err(THRESHOLD.err(format!("{t} is not between 0 and 100")));
                }
                t
            }
            None => 50.0,
        };
        let seed_demo = match cli.seed_demo.or(file_str(f.seed_demo)).as_deref().map(str::trim) {
            None | Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(other) => return Err(SEED.err(format!("{other:?} is not true or false"))),
        };
        let corpus = match cli.corpus.or(f.corpus) {
            None => None,
            Some(path) => Some(
                CorpusSpec::parse(
                    path,
                    cli.corpus_format.or(f.corpus_format).as_deref(),
                    cli.corpus_columns.or(f.corpus_columns).as_deref(),
                )
                .map_err(|(flag, reason)| {
                    let s = if flag == "corpus-format" {
                        CORPUS_FORMAT
                    } else {
                        CORPUS_COLUMNS
                    };
                    s.err(reason)
                })?,
            ),
        };
        let shutdown_timeout = match cli.shutdown_timeout.or(file_str(f.shutdown_timeout)) {
            Some(v) => humantime::parse_duration(v.trim())
                .map_err(|e| SHUTDOWN.err(format!("{v:?} is not a duration like `10s`: {e}")))?,
            None => Duration::from_secs(10),
        };
        let ws_max_connections = match cli.ws_max_connections.or(file_str(f.ws_max_connections)) {
            Some(v) => positive(&WS_MAX, parse_num::<usize>(&WS_MAX, &v)?)?,
            None => 10_000,
        };

        let max_model_posts = match cli.max_model_posts.or(file_str(f.max_model_posts)) {
            Some(v) => positive(&MAX_MODEL_POSTS, parse_num::<usize>(&MAX_MODEL_POSTS, &v)?)?,
            None => 100_000,
        };
        let generate_queue_capacity = match cli
            .generate_queue_capacity
            .or(file_str(f.generate_queue_capacity))
        {
            Some(v) => {
                let n = positive(&GEN_QUEUE, parse_num::<usize>(&GEN_QUEUE, &v)?)?;
                if n > 1 << 20 {
                    return Err(GEN_QUEUE.err(format!("{n} is more than the maximum of 1048576")));
                }
                n
            }
            None => 16_384,
        };
        let train_queue_posts = match cli.train_queue_posts.or(file_str(f.train_queue_posts)) {
            Some(v) => {
                let n = positive(&TRAIN_QUEUE, parse_num::<usize>(&TRAIN_QUEUE, &v)?)?;
                if n > 10_000_000 {
                    return Err(TRAIN_QUEUE.err(format!("{n} is more than the maximum of 10000000")));
                }
                n
            }
            None => 100_000,
        };

        Ok(Settings {
            listen,
            data_dir,
            database,
            database_ca_file,
            redis_url: redis_url.map(Secret),
            redis_prefix,
            llm_base_url,
            llm_api_key: cli.llm_api_key.or(f.llm_api_key).map(Secret),
            llm_model: cli.llm_model.or(f.llm_model),
            cache_max_items,
            cache_max_bytes,
            db_pool_size,
            sqlite_cache_kib,
            sqlite_wal_checkpoint_pages,
            api_rate_limit_per_minute,
            client_rate_limit_per_minute,
            admin_rate_limit_per_minute,
            log_level,
            log_format,
            admin_token,
            dictionary,
            cors_origins,
            max_body_bytes,
            max_text_chars,
            alert_threshold,
            seed_demo,
            corpus,
            shutdown_timeout,
            ws_max_connections,
            max_model_posts,
            generate_queue_capacity,
            train_queue_posts,
        })
    }

    /// The defaults with the data directory (and so the database and the
    /// dictionary) under `data_dir`, listening on `listen`: what tests and
    /// embedders start from.
    ///
    /// # Panics
    ///
    /// Never: the defaults are valid.
    #[must_use]
    pub fn with_data_dir(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        let cli = Cli {
            data_dir: Some(data_dir.into()),
            listen: Some(listen.to_string()),
            ..Cli::default()
        };
        Self::merge(cli, FileSettings::default()).expect("the defaults are valid")
    }
}

fn read_file(path: &Path) -> Result<FileSettings, SettingError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CONFIG.err(format!("{} could not be read: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| CONFIG.err(format!("{}: {e}", path.display())))
}

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server (`postgres://…`; the password is never shown).
    Postgres(Secret),
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&mask_password(url.expose()))
                .finish(),
        }
    }
}

impl Database {
    /// The file, or the server URL without its password, for display.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => mask_password(url.expose()),
        }
    }
}

/// The certificates of the PEM file `path` (at least one), as DER.
///
/// # Errors
///
/// Why the file cannot be used: unreadable, not PEM, or no certificate.
pub(crate) fn database_roots(
    path: &Path,
) -> Result<Vec<brisk_db_pool::rustls::pki_types::CertificateDer<'static>>, String> {
    use brisk_db_pool::rustls::pki_types::CertificateDer;
    use brisk_db_pool::rustls::pki_types::pem::PemObject;

    let pem = std::fs::read(path).map_err(|e| format!("{} could not be read: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The URL the pool connects with: the operator's, with `sslmode` added
/// when it has none: `require` with a CA file (TLS, verified against it),
/// else `disable` (plain TCP, as before the server supported TLS; libpq's
/// default `prefer` would try TLS and, with rustls, refuse a certificate
/// the system does not trust).
pub(crate) fn postgres_url(url: &str, has_ca_file: bool) -> String {
    let has_mode = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|kv| kv.trim().starts_with("sslmode=")));
    if has_mode {
        return url.to_owned();
    }
    let mode = if has_ca_file { "require" } else { "disable" };
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode={mode}")
}

/// `postgres://user:secret@host/db?opts` → `postgres://user:***@host/db`.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redacted>".to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (Some(auth), host),
        None => (None, rest),
    };
    let host = host.split('?').next().unwrap_or_default();
    match auth {
        Some(auth) => {
            let user = auth.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => format!("{scheme}://{host}"),
    }
}

/// An `sqlite://PATH` or `postgres://…` URL.
fn parse_database(url: &str) -> Result<Database, SettingError> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(Secret(url.to_owned())));
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(DATABASE_URL.err("must be sqlite://PATH or postgres://USER@HOST/DB"));
    };
    let rest = rest.split('?').next().unwrap_or_default();
    if rest.is_empty() {
        return Ok(Database::Sqlite(PathBuf::from(
            brisk_db_pool::DEFAULT_SQLITE_PATH,
        )));
    }
    Ok(Database::Sqlite(PathBuf::from(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flags as clap would give them, without reading the environment
    /// (the binary's tests cover clap itself).
    fn cli(pairs: &[(&str, &str)]) -> Cli {
        let mut c = Cli::default();
        for &(k, v) in pairs {
            let v = Some(v.to_owned());
            match k {
                "listen" => c.listen = v,
                "max-memory-cache-items" => c.max_memory_cache_items = v,
                "database-url" => c.database_url = v,
                "admin-token" => c.admin_token = v,
                "llm-api-key" => c.llm_api_key = v,
                _ => unreachable!("{k}"),
            }
        }
        c
    }

    #[test]
    fn defaults_when_nothing_is_given() {
        let s = Settings::merge(Cli::default(), FileSettings::default()).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(s.database, Database::Sqlite(PathBuf::from("./data/brisk.db")));
        assert_eq!(s.dictionary, PathBuf::from("./data/dictionary.toml"));
        assert!(s.admin_token.is_none() && s.cors_origins.is_empty() && s.seed_demo);
        assert_eq!((s.max_model_posts, s.generate_queue_capacity), (100_000, 16_384));
        assert_eq!((s.train_queue_posts, s.sqlite_cache_kib), (100_000, 4_096));
        assert_eq!(s.sqlite_wal_checkpoint_pages, 16_384);
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: FileSettings =
            toml::from_str("listen = \"127.0.0.1:9000\"\nmax_memory_cache_items = 5\nlog_level = \"debug\"")
                .unwrap();
        let s = Settings::merge(cli(&[("listen", "127.0.0.1:9001")]), file).unwrap();
        assert_eq!(s.listen.port(), 9001);
        assert_eq!(s.cache_max_items, 5);
        assert_eq!(s.log_level, "debug");
    }

    #[test]
    fn an_invalid_setting_is_named() {
        let err = Settings::merge(cli(&[("listen", "nowhere")]), FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("BRISK_LISTEN"), "{err}");
        let err =
            Settings::merge(cli(&[("max-memory-cache-items", "0")]), FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("MAX_MEMORY_CACHE_ITEMS"), "{err}");
        let err =
            Settings::merge(cli(&[("database-url", "mysql://x/y")]), FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
        let err = Settings::merge(cli(&[("admin-token", "short")]), FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("ADMIN_TOKEN"), "{err}");
        assert!(toml::from_str::<FileSettings>("no_such_key = 1").is_err());
        let file: FileSettings = toml::from_str("max_model_posts = 0").unwrap();
        let err = Settings::merge(Cli::default(), file).unwrap_err();
        assert!(err.to_string().contains("BRISK_MAX_MODEL_POSTS"), "{err}");
        let file: FileSettings = toml::from_str("generate_queue_capacity = \"lots\"").unwrap();
        let err = Settings::merge(Cli::default(), file).unwrap_err();
        assert!(err.to_string().contains("BRISK_GENERATE_QUEUE_CAPACITY"), "{err}");
        let file: FileSettings = toml::from_str("sqlite_cache_kib = 8").unwrap();
        let err = Settings::merge(Cli::default(), file).unwrap_err();
        assert!(err.to_string().contains("BRISK_SQLITE_CACHE_KIB"), "{err}");
        let file: FileSettings = toml::from_str("sqlite_wal_checkpoint_pages = 10").unwrap();
        let err = Settings::merge(Cli::default(), file).unwrap_err();
        assert!(
            err.to_string().contains("BRISK_SQLITE_WAL_CHECKPOINT_PAGES"),
            "{err}"
        );
        let file: FileSettings = toml::from_str("train_queue_posts = 0").unwrap();
        let err = Settings::merge(Cli::default(), file).unwrap_err();
        assert!(err.to_string().contains("BRISK_TRAIN_QUEUE_POSTS"), "{err}");
    }

    #[test]
    fn sslmode_is_added_only_when_missing() {
        let u = "postgres://a@h/db";
        assert_eq!(postgres_url(u, false), "postgres://a@h/db?sslmode=disable");
        assert_eq!(postgres_url(u, true), "postgres://a@h/db?sslmode=require");
        assert_eq!(
            postgres_url("postgres://a@h/db?application_name=x", true),
            "postgres://a@h/db?application_name=x&sslmode=require"
        );
        let given = "postgres://a@h/db?sslmode=prefer";
        assert_eq!(postgres_url(given, true), given);
    }

    #[test]
    fn the_database_ca_file_is_checked() {
        let dir = std::env::temp_dir().join(format!("brisk-server-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let pg = "postgres://a@127.0.0.1/db";
        for (url, file, wanted) in [
            (pg, dir.join("missing.pem"), "could not be read"),
            (pg, bad.clone(), "no PEM certificate"),
            ("sqlite://x.db", bad.clone(), "postgres://"),
        ] {
            let mut c = cli(&[("database-url", url)]);
            c.database_ca_file = Some(file);
            let err = Settings::merge(c, FileSettings::default()).unwrap_err();
            assert!(err.to_string().contains("DATABASE_CA_FILE"), "{err}");
            assert!(err.to_string().contains(wanted), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let s = Settings::merge(
            cli(&[
                ("admin-token", "0123456789abcdef-secret"),
                ("llm-api-key", "sk-very-secret"),
            ]),
            FileSettings::default(),
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("secret"), "{shown}");
        let pg = parse_database("postgres://app:hunter2@db.internal:5432/brisk?sslmode=require").unwrap();
        assert_eq!(
            format!("{pg:?}"),
            "Postgres(\"postgres://app:***@db.internal:5432/brisk\")"
        );
        assert!(shown.contains("<redacted>"));
    }
}
