//! The one error type of brisk-load.

use std::net::SocketAddr;

/// Why a run could not start or a file could not be read.
///
/// Each variant names what to fix: the target and the address it resolved
/// to, or the field of the mix file.
///
/// ```
/// use brisk_load::{LoadError, Target};
///
/// match Target::parse("http://192.0.2.1:8000", false) {
///     Err(LoadError::NonLoopback { addr, .. }) => assert_eq!(addr.port(), 8000),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The target resolves to an address outside 127.0.0.0/8 and `::1`, and
    /// `--allow-remote` was not given.
    #[error(
        "refusing target {target}: it resolves to {addr}, outside 127.0.0.0/8 and ::1 \
         (pass --allow-remote to load a host you own)"
    )]
    NonLoopback {
        /// The target as given.
        target: String,
        /// The first non-loopback address it resolved to.
        addr: SocketAddr,
    },
    /// The target is not a URL brisk-load can use.
    #[error("invalid target {target}: {reason}")]
    InvalidTarget {
        /// The target as given.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A mix file (or the built-in mix) is invalid.
    #[error("mix {source_name}: {field}: {message}")]
    Mix {
        /// The file name, or `built-in`.
        source_name: String,
        /// The field at fault, as a path: `request[2].method`, `sla.p99_ms`;
        /// `(file)` when the file as a whole could not be parsed.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A scenario setting is out of range.
    #[error("invalid setting {field}: {message}")]
    Setting {
        /// The flag or setting at fault (`--rate`, `--connections`, ...).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing a file, or a socket operation that ends the run.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl LoadError {
    pub(crate) fn setting(field: &str, message: impl Into<String>) -> Self {
        Self::Setting {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
