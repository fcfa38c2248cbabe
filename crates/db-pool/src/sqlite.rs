//! The SQLite backend: one writer connection and N readers on a WAL
//! database, the same batch writer and migration runner as PostgreSQL.
//
// SQLite allows one writer at a time; giving the store exactly one writer
// connection (behind a mutex) turns would-be `SQLITE_BUSY` errors between
// our own writers into a queue, while WAL mode lets the readers run beside
// it. `synchronous=NORMAL` in WAL mode is durable against a crash of the
// process (a committed transaction is in the WAL file before `COMMIT`
// returns); only a power loss can take back the last commits. The work is
// blocking, so it runs on tokio's blocking pool.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use brisk_core::{ConfigError, StatsReport, StatsSource};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::migrate::{MigrationReport, plan};
use crate::stats::{QueryStats, QueryStatsConfig, SlowQuery, StatementStats};
use crate::table::quote_ident;
use crate::{
    BatchRow, BatchWriterBuilder, DEFAULT_SQLITE_PATH, Dialect, Error, Migrations, RetryClass, Table,
    WriteMode,
};

/// Builds a [`SqliteStore`].
#[derive(Clone, Debug)]
#[must_use]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    readers: usize,
    busy_timeout: Duration,
    cache_size_kib: u32,
    wal_autocheckpoint_pages: u32,
    query_stats: QueryStatsConfig,
}

impl Default for SqliteStoreBuilder {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_SQLITE_PATH),
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            cache_size_kib: 16 * 1024,
            wal_autocheckpoint_pages: 1000,
            query_stats: QueryStatsConfig::default(),
        }
    }
}

impl SqliteStoreBuilder {
    /// The database file; created (with its directory) if missing. Default
    /// `./data/brisk.db`.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    /// Read-only connections for [`SqliteStore::read`]. Default 4; at least 1.
    pub fn readers(mut self, n: usize) -> Self {
        self.readers = n;
        self
    }

    /// How long a connection waits for a lock another process holds before
    /// `SQLITE_BUSY` (`PRAGMA busy_timeout`). Default 5 s; more than zero.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The page cache of each connection in KiB (`PRAGMA cache_size`).
    /// Default 16 MiB; at least 64 KiB.
    pub fn cache_size_kib(mut self, kib: u32) -> Self {
        self.cache_size_kib = kib;
        self
    }

    /// How many pages the write-ahead log may hold before a commit copies
    /// them into the database file (`PRAGMA wal_autocheckpoint` on the
    /// writer). Default 1,000 (SQLite's, about 4 MiB); at least 1. A larger
    /// value makes bulk writes faster, because a page written by many
    /// commits is copied once per checkpoint, at the cost of a larger WAL
    /// file (the WAL keeps its largest size on disk) and a longer pause at
    /// each checkpoint.
    pub fn wal_autocheckpoint_pages(mut self, pages: u32) -> Self {
        self.wal_autocheckpoint_pages = pages;
        self
    }

    /// Batches at least this slow go into the slow-query log. Default 100 ms.
    pub fn slow_query_threshold(mut self, threshold: Duration) -> Self {
        self.query_stats.slow_threshold = threshold;
        self
    }

    /// Opens the database: WAL mode, `synchronous=NORMAL`, the busy timeout
    /// and the page cache on every connection.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `sqlite.readers`, `sqlite.busy_timeout`,
    /// `sqlite.cache_size_kib`, `sqlite.wal_autocheckpoint_pages` or
    /// `sqlite.path`; [`Error::Connect`] naming
    /// the path when the file cannot be opened or is not a database.
    pub fn build(self) -> Result<SqliteStore, Error> {
        if self.readers == 0 {
            return Err(ConfigError::new("sqlite.readers", "must be at least 1").into());
        }
        if self.busy_timeout.is_zero() {
            return Err(ConfigError::new("sqlite.busy_timeout", "must be greater than zero").into());
        }
        if self.cache_size_kib < 64 {
            return Err(ConfigError::new("sqlite.cache_size_kib", "must be at least 64").into());
        }
        if self.wal_autocheckpoint_pages == 0 {
            return Err(ConfigError::new(
                "sqlite.wal_autocheckpoint_pages",
                "must be at least 1 (0 would let the write-ahead log grow without bound)",
            )
            .into());
        }
        if self.path.as_os_str().is_empty() || self.path.as_os_str() == ":memory:" {
            return Err(ConfigError::new(
                "sqlite.path",
                "must be a file path (an in-memory database cannot be shared by a writer and readers)",
            )
            .into());
        }
        let connect_err = |reason: String| Error::Connect {
            server: self.path.display().to_string(),
            reason,
            sqlstate: None,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| connect_err(format!("creating directory {}: {e}", dir.display())))?;
        }
        let open = |flags: OpenFlags, read_only: bool| -> Result<Connection, Error> {
            let conn =
                Connection::open_with_flags(&self.path, flags).map_err(|e| connect_err(e.to_string()))?;
            conn.busy_timeout(self.busy_timeout)
                .map_err(|e| connect_err(e.to_string()))?;
            let pragmas = format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{}; \
                 PRAGMA foreign_keys = ON;{}",
                self.cache_size_kib,
                if read_only {
                    " PRAGMA query_only = ON;".to_owned()
                } else {
                    format!(" PRAGMA wal_autocheckpoint = {};", self.wal_autocheckpoint_pages)
                }
            );
            conn.execute_batch(&pragmas)
                .map_err(|e| connect_err(e.to_string()))?;
            conn.set_prepared_statement_cache_capacity(64);
            Ok(conn)
        };
        let writer = open(
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            false,
        )?;
        let readers = (0..self.readers)
            .map(|_| {
                open(
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    true,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: self.path,
                writer: Mutex::new(writer),
                reader_permits: Semaphore::new(readers.len()),
                readers: Mutex::new(readers),
                stats: QueryStats::new(self.query_stats),
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    reader_permits: Semaphore,
    stats: QueryStats,
}

/// An embedded SQLite database: one writer connection and N readers.
/// Cheap to clone (clones share the connections).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

pub(crate) fn sqlite_error(e: rusqlite::Error, context: Cow<'static, str>) -> Error {
    let class = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            RetryClass::RetryTransaction
        }
        _ => RetryClass::Never,
    };
    Error::Database {
        context,
        sqlstate: None,
        class,
        message: e.to_string(),
        source: Box::new(e),
    }
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::Database {
        context: Cow::Borrowed("SQLite task"),
        sqlstate: None,
        class: RetryClass::Never,
        message: e.to_string(),
        source: Box::new(e),
    }
}

impl SqliteStore {
    /// A builder with the defaults (see each setter).
    pub fn builder() -> SqliteStoreBuilder {
        SqliteStoreBuilder::default()
    }

    /// Opens (or creates) the database at `path` with the default settings.
    ///
    /// # Errors
    ///
    /// As for [`SqliteStoreBuilder::build`].
    pub fn open(path: impl Into<PathBuf>) -> Result<SqliteStore, Error> {
        Self::builder().path(path).build()
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer connection (on tokio's blocking pool). Use
    /// `conn.transaction()` inside for several statements.
    ///
    /// # Errors
    ///
    /// The error `f` returns, converted (`SQLITE_BUSY` is
    /// [`RetryClass::RetryTransaction`]).
    pub async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn).map_err(|e| sqlite_error(e, Cow::Borrowed("SQLite write")))
        })
        .await
        .map_err(join_error)?
    }

    /// Runs `f` on one of the read-only connections, waiting for a free one.
    ///
    /// # Errors
    ///
    /// The error `f` returns, converted.
    pub async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let _permit = self
            .inner
            .reader_permits
            .acquire()
            .await
            .map_err(|_| Error::Closed { what: "SQLite store" })?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = inner.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let Some(conn) = conn else {
                return Err(Error::Closed { what: "SQLite store" });
            };
            let result = f(&conn).map_err(|e| sqlite_error(e, Cow::Borrowed("SQLite read")));
            inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        })
        .await
        .map_err(join_error)?
    }

    /// Runs `;`-separated statements on the writer connection, timed into
    /// the query statistics.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] naming the statement.
    pub async fn execute_batch(&self, sql: &str) -> Result<(), Error> {
        let owned = sql.to_owned();
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let start = Instant::now();
            let result = conn.execute_batch(&owned);
            inner.stats.record(&owned, start.elapsed(), result.is_ok());
            result.map_err(|e| sqlite_error(e, crate::error::sql_context(&owned)))
        })
        .await
        .map_err(join_error)?
    }

    /// Applies the pending [`Dialect::Sqlite`] migrations in one
    /// `BEGIN IMMEDIATE` transaction (SQLite's write lock keeps concurrent
    /// migrators apart), recording each with its checksum in
    /// `brisk_migrations`.
    ///
    /// # Errors
    ///
    /// [`Error::MigrationChanged`] for an edited migration,
    /// [`Error::MigrationFailed`] for one whose SQL fails (nothing of this run
    /// is then applied).
    pub async fn migrate(&self, migrations: &Migrations) -> Result<MigrationReport, Error> {
        let embedded = migrations.for_dialect(Dialect::Sqlite).to_vec();
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            migrate_sqlite(&mut conn, &embedded)
        })
        .await
        .map_err(join_error)?
    }

    /// A batch writer into `table`; see [`BatchWriterBuilder`].
    pub fn batch_writer<R: BatchRow>(&self, table: Table) -> BatchWriterBuilder<R> {
        BatchWriterBuilder::new(crate::writer::Target::Sqlite(self.clone()), table)
    }

    /// Timing per normalised statement (and per batch), most executed first.
    #[must_use]
    pub fn query_stats(&self) -> Vec<StatementStats> {
        self.inner.stats.statements()
    }

    /// The slow-query threshold.
    #[must_use]
    pub fn slow_query_threshold(&self) -> Duration {
        self.inner.stats.threshold()
    }

    /// The slowest statements and batches at or over the threshold.
    #[must_use]
    pub fn slow_queries(&self) -> Vec<SlowQuery> {
        self.inner.stats.slow_queries()
    }
}

impl StatsSource for SqliteStore {
    fn report_stats(&self, out: &mut StatsReport) {
        #[allow(clippy::cast_precision_loss)]
        let _ = out
            .gauge(
                "brisk_db_pool_idle",
                "Idle reader connections",
                self.inner.reader_permits.available_permits() as f64,
            )
            .label("backend", "sqlite");
        self.inner.stats.report("sqlite", out);
    }
}

fn migrate_sqlite(conn: &mut Connection, embedded: &[crate::Migration]) -> Result<MigrationReport, Error> {
    let err = |ctx: &'static str| move |e| sqlite_error(e, Cow::Borrowed(ctx));
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err("BEGIN IMMEDIATE"))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS brisk_migrations (\
         version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, \
         applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
    )
    .map_err(err("creating brisk_migrations"))?;
    let applied: Vec<(i64, String, String)> = {
        let mut stmt = tx
            .prepare("SELECT version, name, checksum FROM brisk_migrations ORDER BY version")
            .map_err(err("reading brisk_migrations"))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(err("reading brisk_migrations"))?
    };
    let pending = plan(embedded, &applied)?;
    let mut report = MigrationReport {
        applied: Vec::new(),
        already_applied: embedded.len() - pending.len(),
    };
    for m in pending {
        tx.execute_batch(m.sql()).map_err(|e| {
            sqlite_error(e, Cow::Owned(format!("migration {}", m.version())))
                .in_migration(m.version(), m.name())
        })?;
        tx.execute(
            "INSERT INTO brisk_migrations (version, name, checksum) VALUES (?1, ?2, ?3)",
            (m.version(), m.name(), m.checksum()),
        )
        .map_err(err("recording a migration"))?;
        report.applied.push(m.version());
    }
    tx.commit().map_err(err("COMMIT"))?;
    Ok(report)
}

/// SQLite's side of the batch writer: prepared multi-row statements inside
/// one transaction per batch.
#[derive(Debug)]
pub(crate) struct SqliteSink {
    store: SqliteStore,
    plan: Arc<SinkPlan>,
}

#[derive(Debug)]
struct SinkPlan {
    mode: WriteMode,
    columns: usize,
    rows_per_statement: usize,
    /// For the insert modes: the statement text up to `VALUES`, and what
    /// follows the value lists. For `Update`: the per-row statement.
    head: String,
    tail: String,
    /// `Update`: the column order of the statement's parameters.
    order: Vec<usize>,
    label: String,
}

impl SqliteSink {
    pub(crate) fn new(store: SqliteStore, table: &Table, mode: WriteMode) -> Self {
        let name = table.quoted_name();
        let cols = table.quoted_columns();
        let columns = table.columns().len();
        let key = table.quoted_key();
        let mut order: Vec<usize> = (0..columns).collect();
        let (head, tail) = match mode {
            WriteMode::Copy => (format!("INSERT INTO {name} ({cols}) VALUES "), String::new()),
            WriteMode::InsertIgnore => (
                format!("INSERT INTO {name} ({cols}) VALUES "),
                format!(" ON CONFLICT ({key}) DO NOTHING"),
            ),
            WriteMode::Upsert => {
                let set: Vec<String> = table
                    .non_key_columns()
                    .map(|c| format!("{0} = excluded.{0}", quote_ident(c)))
                    .collect();
                (
                    format!("INSERT INTO {name} ({cols}) VALUES "),
                    format!(" ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", ")),
                )
            }
            WriteMode::Update => {
                let index = |c: &str| table.columns().iter().position(|(n, _)| n == c).unwrap_or(0);
                let set: Vec<&str> = table.non_key_columns().collect();
                order = set
                    .iter()
                    .map(|c| index(c))
                    .chain(table.key().iter().map(|k| index(k)))
                    .collect();
                let set_sql: Vec<String> = set.iter().map(|c| format!("{} = ?", quote_ident(c))).collect();
                let where_sql: Vec<String> = table
                    .key()
                    .iter()
                    .map(|k| format!("{} = ?", quote_ident(k)))
                    .collect();
                (
                    format!(
                        "UPDATE {name} SET {} WHERE {}",
                        set_sql.join(", "),
                        where_sql.join(" AND ")
                    ),
                    String::new(),
                )
            }
        };
        let plan = SinkPlan {
            mode,
            columns,
            // SQLite allows 32,766 parameters per statement; 100 rows per
            // statement is past the point of diminishing returns.
            rows_per_statement: (32_766 / columns.max(1)).clamp(1, 100),
            head,
            tail,
            order,
            label: format!("batch write to {}", table.name()),
        };
        Self {
            store,
            plan: Arc::new(plan),
        }
    }

    pub(crate) async fn write<R: BatchRow>(&self, rows: Vec<R>) -> (Vec<R>, Result<(), Error>) {
        let store = self.store.clone();
        let plan = Arc::clone(&self.plan);
        let joined = tokio::task::spawn_blocking(move || {
            let mut conn = store.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let start = Instant::now();
            let result = plan.write_blocking(&mut conn, &rows);
            store
                .inner
                .stats
                .record(&plan.label, start.elapsed(), result.is_ok());
            (
                rows,
                result.map_err(|e| sqlite_error(e, Cow::Owned(plan.label.clone()))),
            )
        })
        .await;
        match joined {
            Ok(done) => done,
            // The rows went down with the task; the batch cannot be retried.
            Err(e) => (Vec::new(), Err(join_error(e))),
        }
    }
}

impl SinkPlan {
    fn insert_sql(&self, rows: usize) -> String {
        let one = format!("({})", vec!["?"; self.columns].join(", "));
        let mut sql = self.head.clone();
        sql.push_str(&vec![one.as_str(); rows].join(", "));
        sql.push_str(&self.tail);
        sql
    }

    fn write_blocking<R: BatchRow>(&self, conn: &mut Connection, rows: &[R]) -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        if self.mode == WriteMode::Update {
            let mut stmt = tx.prepare_cached(&self.head)?;
            for row in rows {
                for (p, &c) in self.order.iter().enumerate() {
                    stmt.raw_bind_parameter(p + 1, row.value(c))?;
                }
                stmt.raw_execute()?;
            }
        } else {
            for chunk in rows.chunks(self.rows_per_statement) {
                let mut stmt = tx.prepare_cached(&self.insert_sql(chunk.len()))?;
                let mut p = 1;
                for row in chunk {
                    for c in 0..self.columns {
                        stmt.raw_bind_parameter(p, row.value(c))?;
                        p += 1;
                    }
                }
                stmt.raw_execute()?;
            }
        }
        tx.commit()
    }
}
