//! The target of a run, and the loopback-only rule.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::LoadError;

/// A parsed, resolved target: `http://127.0.0.1:8000`, `ws://127.0.0.1:9001/ws`.
///
/// [`Target::parse`] refuses any address outside 127.0.0.0/8 and `::1`
/// unless `allow_remote` is set, so a typo cannot point a load run at
/// someone else's machine.
///
/// ```
/// use brisk_load::Target;
///
/// let t = Target::parse("http://127.0.0.1:8000/api", false)?;
/// assert_eq!(t.addr().port(), 8000);
/// assert_eq!(t.base_path(), "/api");
/// assert!(Target::parse("http://10.0.0.1:8000", false).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    original: String,
    scheme: String,
    authority: String,
    addr: SocketAddr,
    base_path: String,
}

/// Whether an address is on this machine's loopback: 127.0.0.0/8 or `::1`
/// (also as an IPv4-mapped IPv6 address).
#[must_use]
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

impl Target {
    /// Parses and resolves `target` (`http`, `ws` schemes; `https`/`wss`
    /// are refused: brisk-load speaks plain HTTP/1.1 over loopback).
    ///
    /// # Errors
    ///
    /// [`LoadError::InvalidTarget`] for a URL that does not parse, has no
    /// host, or an unsupported scheme; [`LoadError::NonLoopback`] when any
    /// resolved address is outside loopback and `allow_remote` is false.
    pub fn parse(target: &str, allow_remote: bool) -> Result<Self, LoadError> {
        let invalid = |reason: &str| LoadError::InvalidTarget {
            target: target.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = target
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| invalid("no scheme (write http://HOST:PORT)"))?;
        let default_port = match scheme {
            "http" | "ws" => 80,
            "https" | "wss" => return Err(invalid("TLS is not supported; use http:// or ws:// on loopback")),
            _ => return Err(invalid("the scheme must be http or ws")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(default_port);
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| invalid(&format!("cannot resolve {host}: {e}")))?
            .collect();
        let first = *addrs
            .first()
            .ok_or_else(|| invalid("the host resolved to no address"))?;
        if !allow_remote && let Some(bad) = addrs.iter().find(|a| !is_loopback(a)) {
            return Err(LoadError::NonLoopback {
                target: target.to_owned(),
                addr: *bad,
            });
        }
        // Prefer an IPv4 address when a name resolves to both (`localhost`).
        let addr = addrs.iter().copied().find(SocketAddr::is_ipv4).unwrap_or(first);
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            original: target.to_owned(),
            scheme: scheme.to_owned(),
            authority: authority.as_str().to_owned(),
            addr,
            base_path,
        })
    }

    /// The socket address connections go to.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `Host` header value (`127.0.0.1:8000`).
    #[must_use]
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The path of the URL without a trailing `/` (empty for `http://h:p`);
    /// HTTP request paths are appended to it.
    #[must_use]
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The scheme: `http` or `ws`.
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The target as it was given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.original
    }
}
