//! brisk-server: the composed brisk service — an HTTP API, a WebSocket hub
//! and a live dashboard — that runs with one command on embedded defaults.
//!
//! ```text
//! cargo run --release -p brisk-server
//! ```
//!
//! starts it on `127.0.0.1:8000` with an SQLite database in `./data`, an
//! in-process cache and a demo corpus (1,000 posts) and dictionary seeded on
//! the first start. Open `http://127.0.0.1:8000/` for the dashboard.
//!
//! What it composes:
//!
//! - **brisk-db-pool**: posts and alerts in SQLite (the default) or
//!   PostgreSQL (`DATABASE_URL=postgres://…`), written through batch
//!   writers and acknowledged only after commit; keyset-paginated reads on
//!   composite indexes; the slow-query log.
//! - **brisk-cache**: analyses by content hash (namespace `analysis`) and
//!   seeded generations (namespace `generation`), with hit ratios and the
//!   cost saved per namespace; with `REDIS_URL`, a Redis L2
//!   (`TieredCache`) shared by every server process.
//! - **brisk-generator** behind **brisk-pipeline**: `POST /api/generate`
//!   runs the local model at High priority; ingested batches train it on a
//!   background thread at the lowest CPU priority, coalesced into passes
//!   (a bounded queue, `BRISK_TRAIN_QUEUE_POSTS`; up to
//!   `BRISK_MAX_MODEL_POSTS` posts), and the model is saved in the data
//!   directory and loaded at the next start.
//!   With `LLM_BASE_URL`, generation asks an OpenAI-compatible API first
//!   (brisk-generator's `openai` client: its own pipeline, rate limiter
//!   and cache), the local model answering when it cannot.
//! - **brisk-pattern-matcher**: relevance, signals and structure of each
//!   text against the dictionary, hot-reloaded by `PUT /api/dictionary`.
//! - **brisk-monitor**: per-route timings, `/metrics`, the performance
//!   summary, SLA reports, health checks and system resources.
//! - **brisk-ws-hub**: `/ws` with the topics `metrics`, `alerts`, `posts`
//!   and `generated`; with `REDIS_URL`, events fan out to every server
//!   process through Redis.
//! - **brisk-rate-limiter**: per-client limits (`x-api-key`, else the IP)
//!   in endpoint classes, 429 with `Retry-After`; with `REDIS_URL`, shared
//!   by every server process (Redis GCRA), falling back to the local
//!   limits while Redis is down.
//!
//! The HTTP API is described in `docs/operations.md` and served as an
//! `OpenAPI` document at `/api/openapi.json`.
//!
//! # Example
//!
//! Start a server on a free port with its data in a temporary directory,
//! ask it something, and shut it down:
//!
//! ```
//! # let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! # rt.block_on(async {
//! use brisk_server::{Settings, start};
//!
//! let dir = std::env::temp_dir().join(format!("brisk-server-doc-{}", std::process::id()));
//! let settings = Settings::with_data_dir(&dir, "127.0.0.1:0".parse()?);
//! let server = start(settings).await?;
//! let addr = server.local_addr();
//!
//! let mut stream = tokio::net::TcpStream::connect(addr).await?;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
//! let mut response = String::new();
//! stream.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 200"));
//! assert!(response.contains("x-request-id"));
//!
//! server.shutdown().await;
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Configuration
//!
//! Flags, then environment variables (a `.env` file is read too), then a
//! TOML file (`--config`), then defaults; see [`Settings`] and
//! `brisk-server --help`. An invalid setting stops startup with a message
//! naming it.

mod api;
mod app;
mod config;
mod corpus;
mod db;
mod error;
mod generate;
mod http;
mod limits;
mod llm;
mod logging;
mod openapi;
mod seed;
mod server;
mod snapshot;
mod train;

pub use app::StartError;
pub use config::{Cli, Database, LogFormat, Secret, SettingError, Settings};
pub use corpus::{Column, CorpusFormat, CorpusSpec};
pub use error::ApiError;
pub use logging::init_logging;
pub use server::{RunningServer, start};
