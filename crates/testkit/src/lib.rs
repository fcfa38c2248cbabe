//! Throwaway, real PostgreSQL and Redis servers for brisk's tests and
//! benchmarks: no mocks.
//!
//! `brisk-testkit` is a dev-dependency only. [`postgres()`] gives a test its
//! own fresh database and [`redis()`] its own key prefix, both on servers
//! started once per test process on 127.0.0.1 and torn down when the
//! process exits. Tests that stop and restart a server mid-test own one:
//! [`postgres_server()`] / [`PostgresServer`] and [`redis_server()`] /
//! [`RedisServer`].
//!
//! ```
//! // Each call gives this test its own database and its own key prefix.
//! // `None` means BRISK_SKIP_SERVICES=1: the skip is recorded, the test returns.
//! let Some(db) = brisk_testkit::postgres() else { return Ok(()) };
//! let Some(kv) = brisk_testkit::redis() else { return Ok(()) };
//!
//! // Any PostgreSQL client takes the URL; tokio-postgres here.
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let greeting: String = runtime.block_on(async {
//!     let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await?;
//!     tokio::spawn(connection);
//!     client.batch_execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('hello')").await?;
//!     Ok::<_, tokio_postgres::Error>(client.query_one("SELECT v FROM t", &[]).await?.get(0))
//! })?;
//!
//! // Any Redis client takes the URL; keep to keys under the test's prefix.
//! let mut con = redis::Client::open(kv.url())?.get_connection()?;
//! redis::cmd("SET").arg(kv.key("greeting")).arg(&greeting).exec(&mut con)?;
//! let back: String = redis::cmd("GET").arg(kv.key("greeting")).query(&mut con)?;
//! assert_eq!(back, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What it provides
//!
//! | | shared server, isolated per test | private server, may stop and restart |
//! |---|---|---|
//! | PostgreSQL | [`postgres()`] → [`TestDatabase`] | [`postgres_server()`], [`PostgresServer`] (+ [`PostgresServerBuilder`]) |
//! | Redis | [`redis()`] → [`TestRedis`] | [`redis_server()`], [`RedisServer`] (+ [`RedisServerBuilder`]) |
//!
//! - A [`TestDatabase`] is a new database (`CREATE DATABASE`) with its URL,
//!   host, port, name and user; dropping it drops the database.
//! - A [`TestRedis`] is a new key prefix with the server URL and a
//!   [`key`](TestRedis::key) helper; dropping it deletes its keys.
//! - Failures are [`TestkitError`]s that name what to fix: the Debian
//!   package of a missing binary (`postgresql`, `redis-server`), the failed
//!   command and its output, the end of a server log.
//!
//! Everything works from plain `#[test]` functions and from inside a tokio
//! runtime (`#[tokio::test]`) alike, and under both `cargo test` (one
//! process, tests on threads, sharing one server of each kind) and `cargo
//! nextest` (one process, so one server of each kind, per test).
//!
//! # Skipping: `BRISK_SKIP_SERVICES`
//!
//! With `BRISK_SKIP_SERVICES=1` the four functions above return `None`, so
//! service-backed tests skip themselves:
//!
//! ```
//! let Some(db) = brisk_testkit::postgres() else { return };
//! # drop(db);
//! ```
//!
//! Each skip is recorded through [`skip()`]: a line on stderr naming the test,
//! and the test's name appended to the file named by `BRISK_SKIP_LOG`, if set,
//! so the test script can count them. A test that starts servers some other
//! way (e.g. through a builder) checks [`skip_services`] first:
//!
//! ```
//! if brisk_testkit::skip_services() {
//!     brisk_testkit::skip("needs a PostgreSQL server with custom settings");
//!     return Ok(());
//! }
//! let server = brisk_testkit::PostgresServer::builder()
//!     .setting("work_mem", "64MB")
//!     .start()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Environment
//!
//! | variable | effect |
//! |---|---|
//! | `BRISK_SKIP_SERVICES` | set (and not `0`/`false`): service-backed tests skip themselves |
//! | `BRISK_SKIP_LOG` | a file each skipped test's name is appended to |
//! | `DATABASE_URL` | a `postgres://` or `postgresql://` URL: [`postgres()`] creates its databases there instead of starting a server (the user needs `CREATEDB`); other URLs (e.g. `sqlite://`) are ignored |
//! | `REDIS_URL` | [`redis()`] uses that server instead of starting one |
//! | `BRISK_PG_BIN` | the directory with `initdb` and `pg_ctl`; default: the newest `/usr/lib/postgresql/*/bin`, else `PATH` |
//! | `BRISK_TESTKIT_TMPDIR` | where server directories go; default: `/dev/shm` if it has 1 GiB free, else the system temp directory |
//!
//! # Feature flags
//!
//! - `postgres` (default): the PostgreSQL half; pulls in `tokio-postgres`
//!   and a tokio `rt`.
//! - `redis` (default): the Redis half; pulls in the `redis` crate's sync
//!   client.
//! - `tls` (implies `postgres`): [`PostgresServerBuilder::tls`] starts
//!   PostgreSQL with `ssl = on` and a certificate signed by a throwaway CA
//!   ([`TestCertificates`], generated with rcgen), for TLS client tests.
//!
//! A crate that needs only one server can depend with `default-features =
//! false, features = ["redis"]` (or `["postgres"]`). The examples in these
//! docs assume the default features.
//!
//! # Implementation notes
//!
//! - **Teardown.** Rust never drops statics, and a test process may panic,
//!   abort or be killed, so each server directory has a watchdog: an `sh` in
//!   its own process group, blocked reading a pipe whose only write end the
//!   test process holds. When that end closes (the owner was dropped, or the
//!   process ended however it ended) the watchdog stops the server
//!   (`pg_ctl stop -m immediate`, or `kill -KILL` of the recorded
//!   `redis-server` pid) and removes the directory. Dropping a private
//!   server closes the pipe and waits, so the same path runs on every drop.
//! - **Ports.** A free port is found by binding `127.0.0.1:0`; if another
//!   process takes it before the server binds it, the start is retried on a
//!   new port (up to 5 times).
//! - **Readiness.** A start returns only once a real `SELECT 1` or `PING`
//!   succeeds (up to 20 s; on failure the error carries the log's tail).
//! - **Speed over durability.** PostgreSQL runs with `fsync`,
//!   `synchronous_commit` and `full_page_writes` off (`initdb --no-sync`
//!   too) and `wal_level = minimal` (no replica reads its WAL); Redis with
//!   no persistence. A clean stop or restart still keeps committed data.
//!   Server directories live in RAM (`/dev/shm`) when it has room, where
//!   `CREATE DATABASE` takes ~30 ms instead of 300+ ms on disk. A PostgreSQL server starts in well under a
//!   second, a Redis server in a few milliseconds.
//! - **Root.** PostgreSQL refuses to run as root; as root its programs run
//!   as the `postgres` user via `runuser`, in a directory chowned to it.
//! - **Async-safe blocking.** Creating and dropping databases uses
//!   tokio-postgres on a separate thread with its own current-thread
//!   runtime, so it never blocks inside (or panics from) the caller's
//!   runtime.

mod error;
#[cfg(feature = "postgres")]
mod pg_client;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod process;
#[cfg(feature = "redis")]
mod redis_server;
mod skip;
#[cfg(feature = "tls")]
mod tls;

pub use error::TestkitError;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresServer, PostgresServerBuilder, TestDatabase, postgres, postgres_server};
#[cfg(feature = "redis")]
pub use redis_server::{RedisServer, RedisServerBuilder, TestRedis, redis, redis_server};
pub use skip::{skip, skip_services};
#[cfg(feature = "tls")]
pub use tls::TestCertificates;
