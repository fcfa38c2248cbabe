//! The crate's one error type, and the classification of errors by SQLSTATE
//! into what a caller may safely do next.
//
// Why classes rather than a list of retryable codes: what is safe to retry
// depends on where the failure happened as much as on its code. A
// serialization failure rolled the transaction back, so running it again is
// always safe; a lost connection before COMMIT rolled it back too, but a
// lost connection *during* COMMIT leaves the outcome unknown, and only an
// idempotent write may then be repeated. The classes say exactly that.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use brisk_core::ConfigError;

/// A boxed error from a database driver.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a caller may do after an error, decided by its SQLSTATE (see
/// [`classify_sqlstate`]) and by where it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryClass {
    /// The transaction was rolled back by the server (serialization failure
    /// `40001`, deadlock `40P01`, lock not available `55P03`, SQLite's
    /// `SQLITE_BUSY`): run the whole transaction again.
    RetryTransaction,
    /// The connection failed or the server is going away or out of resources
    /// (`08000`, `08001`, `08003`, `08004`, `08006`, `57P01`, `57P02`,
    /// `57P03`, `53xxx`): reconnect, and retry only if the work is idempotent
    /// or is known not to have committed.
    ReconnectIfIdempotent,
    /// The connection was lost during `COMMIT` (or `08007`,
    /// transaction resolution unknown): the work may or may not have been
    /// applied. Never retried silently; see [`Error::OutcomeUnknown`].
    OutcomeUnknown,
    /// Retrying cannot help: bad data (`22xxx`), a constraint (`23xxx`), a
    /// syntax or access rule (`42xxx`), or any other error.
    Never,
}

impl RetryClass {
    /// Whether a transaction that failed with this class may be run again
    /// from the start, given whether the work is `idempotent`.
    #[must_use]
    pub fn may_retry(self, idempotent: bool) -> bool {
        match self {
            RetryClass::RetryTransaction => true,
            RetryClass::ReconnectIfIdempotent | RetryClass::OutcomeUnknown => idempotent,
            RetryClass::Never => false,
        }
    }
}

/// Classifies a PostgreSQL SQLSTATE code (five characters, e.g. `"40001"`).
///
/// ```
/// use brisk_db_pool::{RetryClass, classify_sqlstate};
///
/// assert_eq!(classify_sqlstate("40P01"), RetryClass::RetryTransaction);
/// assert_eq!(classify_sqlstate("57P01"), RetryClass::ReconnectIfIdempotent);
/// assert_eq!(classify_sqlstate("53300"), RetryClass::ReconnectIfIdempotent);
/// assert_eq!(classify_sqlstate("08007"), RetryClass::OutcomeUnknown);
/// assert_eq!(classify_sqlstate("23505"), RetryClass::Never);
/// ```
#[must_use]
pub fn classify_sqlstate(code: &str) -> RetryClass {
    match code {
        "40001" | "40P01" | "55P03" => RetryClass::RetryTransaction,
        "08007" => RetryClass::OutcomeUnknown,
        "08000" | "08001" | "08003" | "08004" | "08006" | "57P01" | "57P02" | "57P03" => {
            RetryClass::ReconnectIfIdempotent
        }
        _ if code.starts_with("53") => RetryClass::ReconnectIfIdempotent,
        _ => RetryClass::Never,
    }
}

/// Everything that can go wrong in brisk-db-pool.
///
/// Database errors carry their SQLSTATE ([`Error::sqlstate`]), what was
/// being done (`context`), and their [`RetryClass`] ([`Error::retry_class`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder was given a value it cannot accept; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database URL could not be parsed.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, with any password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's scheme is not one brisk-db-pool knows.
    #[error(
        "unknown database URL scheme {scheme:?} in {url:?}: expected `postgres://`, `postgresql://` or `sqlite://`"
    )]
    UnknownScheme {
        /// The scheme found.
        scheme: String,
        /// The URL, with any password masked.
        url: String,
    },
    /// The URL names a backend whose cargo feature is off.
    #[error("the {backend} backend is not compiled in: enable the `{backend}` feature of brisk-db-pool")]
    BackendDisabled {
        /// `postgres` or `sqlite`.
        backend: &'static str,
    },
    /// The server is up but the database does not exist (SQLSTATE `3D000`).
    #[error("database {database:?} does not exist on {server} (SQLSTATE 3D000)")]
    DatabaseMissing {
        /// The database name.
        database: String,
        /// `host:port` of the server.
        server: String,
    },
    /// No connection could be made to the server (refused, timed out,
    /// authentication failed, ...).
    #[error("cannot connect to {server}: {reason}")]
    Connect {
        /// `host:port` (or the SQLite path) that was tried.
        server: String,
        /// What went wrong.
        reason: String,
        /// SQLSTATE, when the server answered with one.
        sqlstate: Option<String>,
    },
    /// Every connection stayed busy for the pool's whole wait timeout.
    #[error("no free connection after waiting {waited:?}: all {max_size} connections are in use")]
    PoolTimeout {
        /// The wait timeout that ran out.
        waited: Duration,
        /// The pool's maximum size.
        max_size: usize,
    },
    /// The database reported an error, or the connection failed mid-query.
    #[error("{context}: {message}{}", sqlstate_suffix(sqlstate.as_deref()))]
    Database {
        /// What was being done: the statement (normalised) or the operation.
        context: Cow<'static, str>,
        /// The SQLSTATE, if the server sent one (none for a dropped
        /// connection or for SQLite).
        sqlstate: Option<String>,
        /// What a caller may do next.
        class: RetryClass,
        /// The driver's message.
        message: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// The connection was lost during `COMMIT` (or the server said `08007`):
    /// the work may or may not have been applied, so it is not retried.
    #[error(
        "the outcome of {context} is unknown: the connection was lost during COMMIT, so it may or may not have been applied; it was not retried"
    )]
    OutcomeUnknown {
        /// What was being committed.
        context: Cow<'static, str>,
        /// `08007` if the server said so, else none.
        sqlstate: Option<String>,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// A retried operation failed on every attempt.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made, counting the first.
        attempts: u32,
        /// The error of the last attempt.
        last: Box<Error>,
    },
    /// A migration that was already applied has a different checksum now:
    /// its file was edited after it ran. Startup must not go on.
    #[error(
        "migration {version} ({name}) was changed after it was applied: checksum {applied} in the database, {embedded} in the binary; restore the file and put the change in a new migration"
    )]
    MigrationChanged {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: String,
        /// The checksum recorded when it was applied.
        applied: String,
        /// The checksum of the SQL embedded now.
        embedded: String,
    },
    /// A migration's SQL failed; nothing of this run was applied.
    #[error("migration {version} ({name}) failed: {source}")]
    MigrationFailed {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A row handed to a batch writer has the wrong number of values.
    #[error("a row for `{table}` has {found} values, the writer expects {expected} columns")]
    RowShape {
        /// The table.
        table: String,
        /// Columns of the table spec.
        expected: usize,
        /// Values in the row.
        found: usize,
    },
    /// One write asked for more rows than the writer's whole queue holds.
    #[error("a write of {rows} rows cannot fit the writer's queue of {capacity} rows; split it")]
    BatchTooLarge {
        /// Rows in the write.
        rows: usize,
        /// The queue's capacity in rows.
        capacity: usize,
    },
    /// A batch failed for good; every write in it but the first gets this
    /// (the first gets the original error).
    #[error("batch {batch} ({rows} rows) failed after {attempts} attempts: {message}")]
    BatchFailed {
        /// The batch's number within its writer.
        batch: u64,
        /// Rows in the batch.
        rows: usize,
        /// Attempts made.
        attempts: u32,
        /// The SQLSTATE of the last error, if any.
        sqlstate: Option<String>,
        /// The class of the last error ([`RetryClass::OutcomeUnknown`]: the
        /// batch may or may not have committed).
        class: RetryClass,
        /// The last error's message.
        message: String,
    },
    /// The pool, store or writer was closed.
    #[error("the {what} is closed")]
    Closed {
        /// What was closed: `pool`, `batch writer`, ...
        what: &'static str,
    },
}

fn sqlstate_suffix(sqlstate: Option<&str>) -> String {
    sqlstate.map_or_else(String::new, |s| format!(" (SQLSTATE {s})"))
}

impl Error {
    /// The SQLSTATE the server reported, if any.
    #[must_use]
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Database { sqlstate, .. }
            | Error::OutcomeUnknown { sqlstate, .. }
            | Error::Connect { sqlstate, .. } => sqlstate.as_deref(),
            Error::DatabaseMissing { .. } => Some("3D000"),
            Error::RetriesExhausted { last, .. } => last.sqlstate(),
            Error::MigrationFailed { source, .. } => source.sqlstate(),
            _ => None,
        }
    }

    /// What a caller may do after this error.
    #[must_use]
    pub fn retry_class(&self) -> RetryClass {
        match self {
            Error::Database { class, .. } | Error::BatchFailed { class, .. } => *class,
            Error::OutcomeUnknown { .. } => RetryClass::OutcomeUnknown,
            Error::Connect { .. } | Error::PoolTimeout { .. } => RetryClass::ReconnectIfIdempotent,
            Error::RetriesExhausted { last, .. } => last.retry_class(),
            _ => RetryClass::Never,
        }
    }

    /// Whether this is the pool's wait timeout running out.
    #[must_use]
    pub fn is_pool_timeout(&self) -> bool {
        matches!(self, Error::PoolTimeout { .. })
    }

    /// Wraps this error as the cause of a failed migration.
    pub(crate) fn in_migration(self, version: i64, name: &str) -> Error {
        Error::MigrationFailed {
            version,
            name: name.to_owned(),
            source: Box::new(self),
        }
    }
}

/// Masks the password of a URL for error messages: `postgres://u:***@h/db`.
pub(crate) fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth_end, _) = rest
        .char_indices()
        .find(|&(_, c)| c == '/' || c == '?')
        .unwrap_or((rest.len(), ' '));
    let authority = &rest[..auth_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[auth_end..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A short label for error contexts: the first line of `sql`, at most 120
/// characters.
pub(crate) fn sql_context(sql: &str) -> Cow<'static, str> {
    let line = sql.trim().lines().next().unwrap_or("");
    let short: String = line.chars().take(120).collect();
    Cow::Owned(short)
}

impl fmt::Display for RetryClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryClass::RetryTransaction => "retry the transaction",
            RetryClass::ReconnectIfIdempotent => "reconnect and retry if idempotent",
            RetryClass::OutcomeUnknown => "outcome unknown",
            RetryClass::Never => "never retry",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        for code in ["40001", "40P01", "55P03"] {
            assert_eq!(classify_sqlstate(code), RetryClass::RetryTransaction, "{code}");
        }
        for code in [
            "08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03", "53000", "53100",
            "53200", "53300", "53400",
        ] {
            assert_eq!(
                classify_sqlstate(code),
                RetryClass::ReconnectIfIdempotent,
                "{code}"
            );
        }
        assert_eq!(classify_sqlstate("08007"), RetryClass::OutcomeUnknown);
        for code in [
            "22001", "22P02", "23505", "23503", "42601", "42P01", "XX000", "57014",
        ] {
            assert_eq!(classify_sqlstate(code), RetryClass::Never, "{code}");
        }
    }

    #[test]
    fn may_retry_depends_on_idempotency() {
        assert!(RetryClass::RetryTransaction.may_retry(false));
        assert!(!RetryClass::ReconnectIfIdempotent.may_retry(false));
        assert!(RetryClass::ReconnectIfIdempotent.may_retry(true));
        assert!(!RetryClass::Never.may_retry(true));
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(mask_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn database_error_display_has_sqlstate() {
        let e = Error::Database {
            context: "INSERT INTO t".into(),
            sqlstate: Some("23505".into()),
            class: RetryClass::Never,
            message: "duplicate key".into(),
            source: "duplicate key".into(),
        };
        assert_eq!(e.to_string(), "INSERT INTO t: duplicate key (SQLSTATE 23505)");
        assert_eq!(e.sqlstate(), Some("23505"));
    }
}
