//! The crate's one error type.

use std::path::PathBuf;

/// What went wrong while finding, starting, stopping or talking to a test
/// server.
///
/// Every variant carries what a developer needs to fix the machine or the
/// test: which binary is missing and which Debian package provides it, which
/// command failed and what it printed, or the last lines of the server's log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// A server binary (`initdb`, `pg_ctl`, `redis-server`, `runuser`) could
    /// not be found.
    #[error("{binary} not found {searched}: install it with `apt-get install -y {package}`")]
    BinaryNotFound {
        /// The program that was looked for, e.g. `redis-server`.
        binary: String,
        /// Where it was looked for, e.g. `on PATH` or `in /usr/lib/postgresql/15/bin`.
        searched: String,
        /// The Debian package that provides it, e.g. `postgresql`.
        package: &'static str,
    },

    /// A file-system or process operation failed (creating the server
    /// directory, spawning a program, ...).
    #[error("{action}")]
    Io {
        /// What was being done, with the path or program involved.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Generating test certificates failed (feature `tls`).
    #[error("generating a test certificate failed: {reason}")]
    Certificate {
        /// rcgen's message.
        reason: String,
    },

    /// A helper program (`initdb`, `pg_ctl`, `id`, ...) exited unsuccessfully.
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed {
        /// The command line that was run.
        command: String,
        /// How it exited.
        status: String,
        /// What it printed on stdout and stderr (trimmed).
        output: String,
    },

    /// A server process did not start, or started but did not answer a real
    /// query or `PING` in time.
    #[error(
        "{server} did not start on 127.0.0.1:{port}: {reason}\n--- last lines of {} ---\n{log_tail}",
        log.display()
    )]
    StartFailed {
        /// `PostgreSQL` or `Redis`.
        server: &'static str,
        /// The port it was asked to listen on.
        port: u16,
        /// Why the start was judged to have failed.
        reason: String,
        /// The server's log file.
        log: PathBuf,
        /// The last lines of that log, the usual place for the real cause.
        log_tail: String,
    },

    /// A query or command sent to a server failed.
    #[error("{server} at {url}: {action} failed")]
    Query {
        /// `PostgreSQL` or `Redis`.
        server: &'static str,
        /// The server's URL, with any password masked.
        url: String,
        /// What was attempted, e.g. `CREATE DATABASE "brisk_t_..."`.
        action: String,
        /// The client library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// `DATABASE_URL` or `REDIS_URL` is set but could not be used.
    #[error("{var}={value} cannot be used: {reason}")]
    InvalidUrl {
        /// The environment variable, e.g. `DATABASE_URL`.
        var: &'static str,
        /// Its value, with any password masked.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

#[cfg(any(feature = "postgres", feature = "redis"))]
impl TestkitError {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            action: action.into(),
            source,
        }
    }

    /// This error and its chain of sources, one per line: what a panic
    /// message should show.
    pub(crate) fn report(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            out.push_str("\n  caused by: ");
            out.push_str(&cause.to_string());
            source = cause.source();
        }
        out
    }
}

/// `url` with the password (if any) replaced by `***`, for error messages.
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end + 3],
        &authority[..colon],
        &rest[at..]
    )
}

#[cfg(all(test, any(feature = "postgres", feature = "redis")))]
mod tests {
    use super::mask_password;

    #[test]
    fn masks_only_the_password() {
        assert_eq!(
            mask_password("postgres://u:secret@h:5/db?x=1"),
            "postgres://u:***@h:5/db?x=1"
        );
        assert_eq!(mask_password("redis://:pw@h/0"), "redis://:***@h/0");
        assert_eq!(mask_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(mask_password("redis://h:6379/"), "redis://h:6379/");
        assert_eq!(mask_password("not a url"), "not a url");
    }
}
