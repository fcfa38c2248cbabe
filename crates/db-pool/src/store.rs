//! `Store`: one type for either backend, chosen by the URL.

use brisk_core::{StatsReport, StatsSource};

use crate::error::mask_url;
use crate::{BatchRow, BatchWriterBuilder, Dialect, Error, MigrationReport, Migrations, Table};

/// Where the embedded SQLite database lives when nothing else is said
/// (`sqlite://` with no path, or no `DATABASE_URL`).
pub const DEFAULT_SQLITE_PATH: &str = "./data/brisk.db";

/// Which backend a [`Store`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// PostgreSQL, through a [`PgPool`](crate::PgPool).
    Postgres,
    /// SQLite, through a [`SqliteStore`](crate::SqliteStore).
    Sqlite,
}

/// Where a database URL points, before connecting.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Parsed {
    Postgres(String),
    Sqlite(std::path::PathBuf),
}

fn parse_url(url: &str) -> Result<Parsed, Error> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Error::InvalidUrl {
            url: mask_url(url),
            reason: "expected `<scheme>://…`, e.g. `postgres://user@host/db` or `sqlite://data/brisk.db`"
                .to_owned(),
        });
    };
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Ok(Parsed::Postgres(url.to_owned())),
        "sqlite" => {
            let path = rest.split_once('?').map_or(rest, |(p, _)| p);
            Ok(Parsed::Sqlite(if path.is_empty() {
                DEFAULT_SQLITE_PATH.into()
            } else {
                path.into()
            }))
        }
        _ => Err(Error::UnknownScheme {
            scheme: scheme.to_owned(),
            url: mask_url(url),
        }),
    }
}

/// A database on either backend, picked from a URL by [`Store::connect`].
///
/// ```
/// use brisk_db_pool::{Backend, Store};
///
/// let dir = std::env::temp_dir().join(format!("brisk-store-doc-{}", std::process::id()));
/// let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
/// rt.block_on(async {
///     let store = Store::connect(&format!("sqlite://{}/app.db", dir.display())).await?;
///     assert_eq!(store.backend(), Backend::Sqlite);
///     store.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (41), (1)").await?;
///     assert_eq!(store.query_i64("SELECT sum(v) FROM t").await?, 42);
///     Ok::<_, brisk_db_pool::Error>(())
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Store {
    /// A PostgreSQL pool.
    #[cfg(feature = "postgres")]
    Postgres(crate::PgPool),
    /// An embedded SQLite database.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::SqliteStore),
}

impl Store {
    /// Connects to `url`: `postgres://…` / `postgresql://…` opens a
    /// [`PgPool`](crate::PgPool) with the default settings, `sqlite://path`
    /// a [`SqliteStore`](crate::SqliteStore) (`sqlite://` alone:
    /// `./data/brisk.db`; `sqlite:///abs/path` for an absolute path).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] or [`Error::UnknownScheme`] for a URL it cannot
    /// use, [`Error::BackendDisabled`] when the backend's feature is off,
    /// and the backend's connection errors (e.g. [`Error::DatabaseMissing`]).
    pub async fn connect(url: &str) -> Result<Store, Error> {
        match parse_url(url)? {
            #[cfg(feature = "postgres")]
            Parsed::Postgres(url) => Ok(Store::Postgres(crate::PgPool::connect(&url).await?)),
            #[cfg(not(feature = "postgres"))]
            Parsed::Postgres(_) => Err(Error::BackendDisabled { backend: "postgres" }),
            #[cfg(feature = "sqlite")]
            Parsed::Sqlite(path) => Ok(Store::Sqlite(crate::SqliteStore::open(path)?)),
            #[cfg(not(feature = "sqlite"))]
            Parsed::Sqlite(_) => Err(Error::BackendDisabled { backend: "sqlite" }),
        }
    }

    /// [`connect`](Self::connect) to `DATABASE_URL`, or to the embedded
    /// default `sqlite://./data/brisk.db` when it is not set.
    ///
    /// # Errors
    ///
    /// As for `connect`.
    pub async fn from_env() -> Result<Store, Error> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Self::connect(&url).await,
            _ => Self::connect("sqlite://").await,
        }
    }

    /// The backend.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "sqlite")]
            Store::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The SQL dialect its migrations are written in.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        match self.backend() {
            Backend::Postgres => Dialect::Postgres,
            Backend::Sqlite => Dialect::Sqlite,
        }
    }

    /// Applies this backend's migrations; see `PgPool::migrate` and
    /// `SqliteStore::migrate`.
    ///
    /// # Errors
    ///
    /// As for the backend's `migrate`.
    pub async fn migrate(&self, migrations: &Migrations) -> Result<MigrationReport, Error> {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.migrate(migrations).await,
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => s.migrate(migrations).await,
        }
    }

    /// A batch writer into `table`; see [`BatchWriterBuilder`].
    pub fn batch_writer<R: BatchRow>(&self, table: Table) -> BatchWriterBuilder<R> {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.batch_writer(table),
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => s.batch_writer(table),
        }
    }

    /// Runs `;`-separated statements without parameters.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] naming the statement.
    pub async fn execute_batch(&self, sql: &str) -> Result<(), Error> {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.batch_execute(sql).await,
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => s.execute_batch(sql).await,
        }
    }

    /// Runs a query whose first column of its first row is an integer (e.g.
    /// `SELECT count(*) FROM posts`) and returns it.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if the query fails, returns no row, or its first
    /// column is not an integer (`smallint`, `integer` and `bigint` are all
    /// read as `i64`).
    pub async fn query_i64(&self, sql: &str) -> Result<i64, Error> {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => pg_integer(&p.query_one(sql, &[]).await?, sql),
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => {
                let sql = sql.to_owned();
                s.read(move |c| c.query_row(&sql, [], |r| r.get(0))).await
            }
        }
    }

    /// The PostgreSQL pool, if that is the backend.
    #[cfg(feature = "postgres")]
    #[must_use]
    pub fn as_postgres(&self) -> Option<&crate::PgPool> {
        match self {
            Store::Postgres(p) => Some(p),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The SQLite store, if that is the backend.
    #[cfg(feature = "sqlite")]
    #[must_use]
    pub fn as_sqlite(&self) -> Option<&crate::SqliteStore> {
        match self {
            Store::Sqlite(s) => Some(s),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

impl StatsSource for Store {
    fn report_stats(&self, out: &mut StatsReport) {
        match self {
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.report_stats(out),
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => s.report_stats(out),
        }
    }
}

/// The first column of `row` as an `i64`, whichever integer width it has.
#[cfg(feature = "postgres")]
fn pg_integer(row: &tokio_postgres::Row, sql: &str) -> Result<i64, Error> {
    use tokio_postgres::types::Type;
    let column = row.columns().first();
    let read = match column.map(tokio_postgres::Column::type_) {
        Some(&Type::INT8) => row.try_get::<_, i64>(0),
        Some(&Type::INT4) => row.try_get::<_, i32>(0).map(i64::from),
        Some(&Type::INT2) => row.try_get::<_, i16>(0).map(i64::from),
        other => {
            let found = other.map_or_else(|| "no column".to_owned(), |t| format!("a {t} column"));
            let message = format!("expected an integer in the first column, found {found}");
            return Err(Error::Database {
                context: std::borrow::Cow::Owned(sql.to_owned()),
                sqlstate: None,
                class: crate::RetryClass::Never,
                message: message.clone(),
                source: Box::new(std::io::Error::other(message)),
            });
        }
    };
    read.map_err(|e| Error::Database {
        context: std::borrow::Cow::Owned(sql.to_owned()),
        sqlstate: None,
        class: crate::RetryClass::Never,
        message: e.to_string(),
        source: Box::new(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("postgres://u@h/db").unwrap(),
            Parsed::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            parse_url("postgresql://h/db").unwrap(),
            Parsed::Postgres("postgresql://h/db".into())
        );
        assert_eq!(
            parse_url("sqlite://").unwrap(),
            Parsed::Sqlite(DEFAULT_SQLITE_PATH.into())
        );
        assert_eq!(
            parse_url("sqlite://data/x.db").unwrap(),
            Parsed::Sqlite("data/x.db".into())
        );
        assert_eq!(
            parse_url("sqlite:///tmp/x.db").unwrap(),
            Parsed::Sqlite("/tmp/x.db".into())
        );
        match parse_url("mysql://u:pw@h/db") {
            Err(Error::UnknownScheme { scheme, url }) => {
                assert_eq!(scheme, "mysql");
                assert_eq!(url, "mysql://u:***@h/db");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_url("just-a-name"), Err(Error::InvalidUrl { .. })));
    }
}
