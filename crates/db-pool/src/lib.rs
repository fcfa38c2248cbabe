//! brisk-db-pool: a PostgreSQL pool with retries by SQLSTATE, binary-COPY
//! batch writes, migrations and a slow-query log, with SQLite as the
//! embedded backend for a service that starts with no database server.
//!
//! - [`Store`] picks the backend from a URL: `postgres://…` gives a
//!   [`PgPool`], `sqlite://path` (default `./data/brisk.db`) a
//!   [`SqliteStore`].
//! - [`PgPool`] (feature `postgres`): deadpool-postgres with every timeout
//!   on by default, maximum lifetime with jitter, idle timeout, a recycling
//!   check ([`Recycle`]), a prepared-statement cache, statistics, and
//!   [`PgPool::transaction_with_retry`], which retries by SQLSTATE
//!   ([`RetryClass`]) with brisk-core's [`Backoff`](brisk_core::Backoff).
//! - [`BatchWriter`]: a bounded queue that writes rows in transactions —
//!   binary `COPY`, `COPY` into a temporary table then merge, or `UNNEST`
//!   upserts and updates ([`WriteMode`]) — flushing by size or time and
//!   acknowledging each write only after its batch commits.
//! - [`Migrations`]: versioned SQL files embedded in the binary, one
//!   directory per [`Dialect`], applied in a transaction under a lock and
//!   recorded with checksums; a changed applied migration stops startup.
//! - Observability: [`PoolStats`], per-statement timing with p50/p95/p99
//!   ([`StatementStats`]), a slow-query log ([`SlowQuery`]),
//!   [`PgPool::explain`] (flags sequential scans) and
//!   [`PgPool::index_usage`]; all exposed through brisk-core's
//!   [`StatsSource`](brisk_core::StatsSource).
//!
//! # Example
//!
//! The embedded backend: migrate, write a batch, read it back.
//!
//! ```
//! use brisk_db_pool::{ColumnType, Dialect, Migrations, Store, Table, WriteMode};
//!
//! let dir = std::env::temp_dir().join(format!("brisk-db-pool-doc-{}", std::process::id()));
//! let migrations = Migrations::builder()
//!     .file(Dialect::Sqlite, "0001_posts.sql", "CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
//!     .file(Dialect::Postgres, "0001_posts.sql", "CREATE TABLE posts (id bigint PRIMARY KEY, body text NOT NULL)")
//!     .build()?;
//! let posts = Table::builder("posts")
//!     .column("id", ColumnType::Int8)
//!     .column("body", ColumnType::Text)
//!     .key(["id"])
//!     .build()?;
//!
//! let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let store = Store::connect(&format!("sqlite://{}/brisk.db", dir.display())).await?;
//!     assert_eq!(store.migrate(&migrations).await?.applied, [1]);
//!
//!     let writer = store.batch_writer::<(i64, String)>(posts).mode(WriteMode::InsertIgnore).build()?;
//!     let ack = writer.write_and_wait(vec![(1, "hello".into()), (2, "world".into())]).await?;
//!     assert_eq!(ack.rows, 2); // committed when this returns
//!
//!     assert_eq!(store.query_i64("SELECT count(*) FROM posts").await?, 2);
//!     Ok::<_, brisk_db_pool::Error>(())
//! })?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # PostgreSQL
//!
//! This example needs a server: it takes a throwaway one from
//! `brisk-testkit` and does nothing under `BRISK_SKIP_SERVICES=1`. In a
//! service, `PgPool::builder().build()` reads `DATABASE_URL`.
//!
//! ```
//! # #[cfg(feature = "postgres")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use brisk_db_pool::{ColumnType, PgPool, Table};
//!
//! let Some(db) = brisk_testkit::postgres() else { return Ok(()) };
//! let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let pool = PgPool::builder()
//!         .url(db.url())
//!         .max_size(10)
//!         .wait_timeout(Duration::from_secs(5))
//!         .slow_query_threshold(Duration::from_millis(50))
//!         .build()
//!         .await?;
//!     pool.batch_execute("CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counters VALUES (1, 0)")
//!         .await?;
//!
//!     // Serialization failures and deadlocks are retried with backoff.
//!     let n: i32 = pool
//!         .transaction_with_retry(async |tx| {
//!             tx.batch_execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").await?;
//!             Ok(tx.query_one("UPDATE counters SET n = n + 1 WHERE id = 1 RETURNING n", &[]).await?.get(0))
//!         })
//!         .await?;
//!     assert_eq!(n, 1);
//!
//!     // Binary COPY in batches, acknowledged after commit.
//!     pool.batch_execute("CREATE TABLE events (id bigint, kind text)").await?;
//!     let table = Table::builder("events").column("id", ColumnType::Int8).column("kind", ColumnType::Text).build()?;
//!     let writer = pool.batch_writer::<(i64, &'static str)>(table).build()?;
//!     writer.write_and_wait((0..1000).map(|i| (i, "click")).collect()).await?;
//!     assert_eq!(pool.query_one("SELECT count(*) FROM events", &[]).await?.get::<_, i64>(0), 1000);
//!
//!     let stats = pool.stats();
//!     assert!(stats.size >= 1 && stats.timeouts == 0);
//!     Ok::<_, brisk_db_pool::Error>(())
//! })?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "postgres"))]
//! # fn main() {}
//! ```
//!
//! # Pool settings
//!
//! | setting | default | |
//! |---|---|---|
//! | [`max_size`](PgPoolBuilder::max_size) | 20 | connections above `min_idle` are the overflow, closed again when idle |
//! | [`min_idle`](PgPoolBuilder::min_idle) | 2 | opened at start (pre-warmed) and kept |
//! | [`wait_timeout`](PgPoolBuilder::wait_timeout) | 30 s | then [`Error::PoolTimeout`] |
//! | [`create_timeout`](PgPoolBuilder::create_timeout) | 10 s | also the TCP connect timeout |
//! | [`recycle_timeout`](PgPoolBuilder::recycle_timeout) | 5 s | |
//! | [`max_lifetime`](PgPoolBuilder::max_lifetime) / [`lifetime_jitter`](PgPoolBuilder::lifetime_jitter) | 1 h / 5 min | |
//! | [`idle_timeout`](PgPoolBuilder::idle_timeout) | 10 min | |
//! | [`recycle`](PgPoolBuilder::recycle) | [`Recycle::Auto`] | closed-socket check; a ping after [`ping_after_idle`](PgPoolBuilder::ping_after_idle) (500 ms) idle; a `ROLLBACK` when a transaction may be left open |
//! | [`statement_cache_capacity`](PgPoolBuilder::statement_cache_capacity) | 256 | `prepare_cached` per connection |
//! | [`slow_query_threshold`](PgPoolBuilder::slow_query_threshold) / [`slow_query_log_size`](PgPoolBuilder::slow_query_log_size) | 100 ms / 20 | |
//! | [`retry`](PgPoolBuilder::retry) | base 20 ms, cap 2 s, 6 attempts | |
//!
//! Waiting for a connection is FIFO (deadpool's tokio semaphore), so the
//! tail of the wait stays bounded under contention.
//!
//! # Retries by SQLSTATE
//!
//! | [`RetryClass`] | SQLSTATEs | what happens |
//! |---|---|---|
//! | `RetryTransaction` | `40001`, `40P01`, `55P03` (SQLite: `SQLITE_BUSY`) | the transaction is run again |
//! | `ReconnectIfIdempotent` | `08000`, `08001`, `08003`, `08004`, `08006`, `57P01`–`57P03`, `53xxx`, a dropped connection | retried if idempotent or known not to have committed |
//! | `OutcomeUnknown` | a connection lost during `COMMIT`, `08007` | [`Error::OutcomeUnknown`]; never retried silently |
//! | `Never` | `22xxx`, `23xxx`, `42xxx`, everything else | returned at once |
//!
//! # Feature flags
//!
//! - `sqlite` (default): [`SqliteStore`], on rusqlite with SQLite bundled
//!   (no system library needed).
//! - `postgres`: [`PgPool`] and everything PostgreSQL, on deadpool-postgres
//!   and tokio-postgres. Without `tls`, connections are plain TCP and a URL
//!   with `sslmode=require` is refused when the pool is built.
//! - `tls` (implies `postgres`): TLS on rustls (with ring) and the system's
//!   root certificates, as the URL's `sslmode` asks (`prefer` by default:
//!   TLS when the server offers it); `PgPoolBuilder::tls_config` takes a
//!   `rustls::ClientConfig` of your own.
//!
//! The default features build and test with no database server.
//!
//! # Implementation notes
//!
//! - **Own manager over deadpool-postgres's.** Connection lifetimes, idle
//!   timeouts and recycle-failure counts are not something deadpool does, so
//!   a small manager wraps deadpool-postgres's: it delegates connecting and
//!   checking, discards connections past their jittered lifetime, and counts.
//! - **Rows are borrowed, not converted.** A [`BatchRow`] hands out
//!   [`ValueRef`]s that encode straight into the COPY buffer (or bind to an
//!   SQLite statement): no per-row allocation.
//! - **COPY in large messages.** tokio-postgres's `BinaryCopyInWriter`
//!   passes the connection task a 4 KiB chunk at a time; the writer encodes
//!   the same binary format itself into 256 KiB chunks, so a million rows
//!   are ~200 hand-offs instead of ~12,000. With
//!   [`parallel_batches`](BatchWriterBuilder::parallel_batches) several
//!   batches are written at once, each on its own connection.
//! - **A recycling check that costs nothing when busy.** [`Recycle::Auto`]
//!   pings only a connection that sat idle past
//!   [`ping_after_idle`](PgPoolBuilder::ping_after_idle) (the idea of `HikariCP`),
//!   and rolls back only one whose caller may have left a transaction open,
//!   so a busy pool checks out in about a microsecond while a restart is
//!   still noticed at checkout.
//! - **Idempotence decides retries.** A batch that failed before `COMMIT`
//!   was rolled back and is always retried; one whose `COMMIT` was lost is
//!   retried only in an idempotent mode (the natural key makes a second run
//!   a no-op); otherwise its writers get [`Error::OutcomeUnknown`].
//! - **SQLite: one writer, N readers.** SQLite serialises writers anyway;
//!   one writer connection behind a mutex makes that a queue instead of
//!   `SQLITE_BUSY` errors, and WAL mode lets readers run beside it.

// The crate docs link the PostgreSQL and SQLite types; in a build without one
// of the backends those links cannot resolve.
#![cfg_attr(
    not(all(feature = "postgres", feature = "sqlite")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!(
    "brisk-db-pool needs at least one backend: enable the `sqlite` (default) or `postgres` feature"
);

#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

mod error;
mod histogram;
mod migrate;
mod stats;
mod store;
mod table;
mod value;
mod writer;

pub use error::{Error, RetryClass, classify_sqlstate};
pub use histogram::LatencySummary;
pub use migrate::{Dialect, Migration, MigrationReport, Migrations, MigrationsBuilder};
#[cfg(feature = "postgres")]
pub use pg::{IndexUsage, PgConn, PgPool, PgPoolBuilder, Plan, PoolStats, Recycle, Tx};
#[cfg(feature = "sqlite")]
pub use rusqlite;
#[cfg(feature = "tls")]
pub use rustls;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, SqliteStoreBuilder};
pub use stats::{SlowQuery, StatementStats, normalize_sql};
pub use store::{Backend, DEFAULT_SQLITE_PATH, Store};
pub use table::{Table, TableBuilder, WriteMode};
#[cfg(feature = "postgres")]
pub use tokio_postgres;
pub use value::{BatchRow, ColumnType, ToValue, Value, ValueRef};
pub use writer::{BatchAck, BatchWriter, BatchWriterBuilder, Receipt, WriterStats};
