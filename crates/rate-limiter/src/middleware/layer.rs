//! `RateLimitLayer`: configuration shared by every clone of the service.
//
// The limiters live behind one `Arc` that the layer and every service it
// makes share. tower's own `RateLimit` keeps its state in the service
// value, so under axum (which clones the service per request) every clone
// counts alone and a 5/s cap lets through whatever the clones add up to.
// Here a clone is a pointer copy: they all decide on the same state.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use brisk_core::{ConfigError, SharedClock};
use http::request::Parts;

use crate::{KeyedRateLimiter, Quota, RateLimiter};

use super::service::RateLimit;

/// A function from a request's head to its key.
pub type KeyFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// Where a request's rate limit key comes from.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// The client's IP address: a `SocketAddr` request extension, or with
    /// the `axum` feature, axum's `ConnectInfo<SocketAddr>` (serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`).
    PeerIp,
    /// A header's value, such as an API key (`x-api-key`).
    Header(http::HeaderName),
    /// Any function of the request's head.
    Function(KeyFn),
}

impl KeySource {
    /// A key taken by `f` from the request's head (method, URI, headers,
    /// extensions).
    pub fn function(f: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        Self::Function(Arc::new(f))
    }

    pub(super) fn key(&self, parts: &Parts) -> Option<String> {
        match self {
            Self::PeerIp => peer_ip(parts).map(|ip| ip.to_string()),
            Self::Header(name) => parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            Self::Function(f) => f(parts),
        }
    }
}

fn peer_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    if let Some(addr) = parts.extensions.get::<SocketAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    None
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerIp => f.write_str("PeerIp"),
            Self::Header(name) => f.debug_tuple("Header").field(name).finish(),
            Self::Function(_) => f.write_str("Function(..)"),
        }
    }
}

/// One class of routes with its own windows.
#[derive(Debug)]
pub(super) struct Class {
    pub(super) name: Cow<'static, str>,
    pub(super) limiter: KeyedRateLimiter<String>,
}

/// What every service made by one layer shares.
#[derive(Debug)]
pub(super) struct Config {
    pub(super) key: KeySource,
    pub(super) classes: Vec<Class>,
    /// Path prefix → index in `classes`, longest prefix first.
    pub(super) routes: Vec<(String, usize)>,
}

impl Config {
    pub(super) fn class_for(&self, path: &str) -> &Class {
        let index = self
            .routes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or(0, |&(_, i)| i);
        &self.classes[index]
    }
}

/// A tower [`Layer`](tower::Layer) that rate limits requests per key and
/// per route class, answering `429 Too Many Requests` with `Retry-After`,
/// the IETF `RateLimit` / `RateLimit-Policy` headers and a small JSON body.
///
/// Every service it makes, and every clone of those, shares one state.
///
/// ```
/// use brisk_rate_limiter::{KeySource, Quota, RateLimitLayer};
///
/// let layer = RateLimitLayer::builder()
///     .key(KeySource::Header(http::HeaderName::from_static("x-api-key")))
///     .class("default", [Quota::per_minute(60)])
///     .class("ml", [Quota::per_minute(100), Quota::per_hour(1_000), Quota::per_day(10_000)])
///     .class("admin", [Quota::per_minute(10), Quota::per_hour(50), Quota::per_day(200)])
///     .route("/api/ml/", "ml")
///     .route("/admin/", "admin")
///     .build()?;
/// // axum: Router::new().route(...).layer(layer)
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    config: Arc<Config>,
}

impl RateLimitLayer {
    /// A builder; see [`RateLimitLayerBuilder`] for the defaults.
    pub fn builder() -> RateLimitLayerBuilder {
        RateLimitLayerBuilder::default()
    }

    /// The limiter of class `name`, to inspect it or set per-key overrides
    /// at run time.
    #[must_use]
    pub fn limiter(&self, class: &str) -> Option<&KeyedRateLimiter<String>> {
        self.config
            .classes
            .iter()
            .find(|c| c.name == class)
            .map(|c| &c.limiter)
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::clone(&self.config))
    }
}

/// Builds a [`RateLimitLayer`].
#[derive(Debug)]
#[must_use]
pub struct RateLimitLayerBuilder {
    key: KeySource,
    classes: Vec<(Cow<'static, str>, Vec<Quota>)>,
    routes: Vec<(String, Cow<'static, str>)>,
    clock: Option<SharedClock>,
    max_keys: usize,
}

impl Default for RateLimitLayerBuilder {
    fn default() -> Self {
        Self {
            key: KeySource::PeerIp,
            classes: Vec::new(),
            routes: Vec::new(),
            clock: None,
            max_keys: 1_000_000,
        }
    }
}

impl RateLimitLayerBuilder {
    /// Where the key comes from. Default [`KeySource::PeerIp`]. Requests
    /// without a key share one state, under the key `"-"`.
    pub fn key(mut self, key: KeySource) -> Self {
        self.key = key;
        self
    }

    /// Adds a class of routes with its windows. The class `"default"`
    /// applies to every route no [`route`](Self::route) claims; it is
    /// required.
    pub fn class(
        mut self,
        name: impl Into<Cow<'static, str>>,
        quotas: impl IntoIterator<Item = Quota>,
    ) -> Self {
        self.classes.push((name.into(), quotas.into_iter().collect()));
        self
    }

    /// Routes whose path starts with `prefix` belong to `class` (the
    /// longest matching prefix wins).
    pub fn route(mut self, prefix: impl Into<String>, class: impl Into<Cow<'static, str>>) -> Self {
        self.routes.push((prefix.into(), class.into()));
        self
    }

    /// The clock of every class's limiter. Default: the limiters' default,
    /// [`MonotonicCoarseClock`](crate::MonotonicCoarseClock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The most keys each class keeps state for. Default 1,000,000.
    pub fn max_keys(mut self, max: usize) -> Self {
        self.max_keys = max;
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `classes` (no `"default"` class, or a name
    /// given twice), `classes["name"].quotas[i].limit` (or `.period`) for a
    /// bad quota, `routes["prefix"]` for a route to an unknown class, or
    /// `max_keys`.
    pub fn build(self) -> Result<RateLimitLayer, ConfigError> {
        let clock = self.clock;
        let mut classes: Vec<Class> = Vec::with_capacity(self.classes.len());
        for (name, quotas) in self.classes {
            if classes.iter().any(|c| c.name == name) {
                return Err(ConfigError::new("classes", format!("names {name:?} twice")));
            }
            let mut builder = RateLimiter::builder();
            if let Some(clock) = &clock {
                builder = builder.clock(Arc::clone(clock));
            }
            let limiter = builder
                .quotas(quotas)
                .max_keys(self.max_keys)
                .name(name.clone())
                .build_keyed()
                .map_err(|e| {
                    ConfigError::new(format!("classes[{name:?}].{}", e.field()), e.reason().to_owned())
                })?;
            classes.push(Class { name, limiter });
        }
        let Some(default) = classes.iter().position(|c| c.name == "default") else {
            return Err(ConfigError::new(
                "classes",
                "must include the class \"default\" (for routes no prefix claims)",
            ));
        };
        classes.swap(0, default);
        let mut routes = Vec::with_capacity(self.routes.len());
        for (prefix, class) in self.routes {
            let Some(index) = classes.iter().position(|c| c.name == class) else {
                return Err(ConfigError::new(
                    format!("routes[{prefix:?}]"),
                    format!("names the class {class:?}, which was not added with `class`"),
                ));
            };
            routes.push((prefix, index));
        }
        routes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(RateLimitLayer {
            config: Arc::new(Config {
                key: self.key,
                classes,
                routes,
            }),
        })
    }
}
