//! Per-client rate limits shared by every server process through Redis
//! (`REDIS_URL`), with the local limits as the fallback.
//
// brisk-rate-limiter's HTTP layer keeps its state in the process; its Redis
// GCRA limiter (`RedisRateLimiter`) is shared but has no local fallback of
// its own: its failure policy only admits or refuses everything. So with
// Redis the server runs this middleware instead of the layer: each request
// is checked against its class's Redis limiter (failing *closed*, so an
// outage is seen as one), and when Redis cannot answer, against the local
// layer's limiter of the same class. After an outage is seen, Redis is
// left alone for a second, so a dead Redis costs no time per request; the
// Redis client reconnects by itself and the shared limits resume.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use brisk_core::ConfigError;
use brisk_rate_limiter::{FailurePolicy, Quota, RateLimitError, RedisRateLimiter};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::app::AppState;

/// How long Redis is left alone after it failed to answer.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The route prefixes with their class; other `/api/*` routes are `default`.
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("/api/posts", "ingest"),
    ("/api/analyze", "analyze"),
    ("/api/generate", "generate"),
    ("/api/dictionary", "admin"),
    ("/api/cache/invalidate", "admin"),
];

/// The class of `path`.
pub(crate) fn class_for(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map_or("default", |(_, class)| class)
}

/// A client's key: `key:` and its `x-api-key` when it sends one, else `ip:`
/// and the peer's address.
pub(crate) fn client_key(headers: &HeaderMap, extensions: &http::Extensions) -> Option<String> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok())
        && !k.is_empty()
    {
        return Some(format!("key:{k}"));
    }
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| format!("ip:{}", c.0.ip()))
}

/// One Redis limiter per class.
#[derive(Clone)]
pub(crate) struct SharedLimits {
    inner: Arc<Inner>,
}

struct Inner {
    classes: Vec<(&'static str, u64, RedisRateLimiter)>,
    epoch: Instant,
    /// Milliseconds since `epoch` until which Redis is not asked.
    paused_until: AtomicU64,
    /// Decisions taken by the local limits because Redis could not answer.
    fallbacks: AtomicU64,
}

impl fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLimits")
            .field("classes", &self.inner.classes.len())
            .field("fallbacks", &self.inner.fallbacks.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SharedLimits {
    /// Limiters on the Redis at `url`, under `PREFIX` + `rl:CLASS:`, for
    /// each class and its limit per minute.
    pub(crate) fn build(
        url: &str,
        prefix: &str,
        classes: &[(&'static str, u64)],
    ) -> Result<Self, ConfigError> {
        let classes = classes
            .iter()
            .map(|&(name, per_minute)| {
                let limiter = RedisRateLimiter::builder(url)
                    .quota(Quota::per_minute(per_minute).named(name))
                    .prefix(format!("{prefix}rl:{name}:"))
                    .failure_policy(FailurePolicy::Closed)
                    .timeout(Duration::from_millis(100))
                    .name(name)
                    .build()?;
                Ok((name, per_minute, limiter))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                classes,
                epoch: Instant::now(),
                paused_until: AtomicU64::new(0),
                fallbacks: AtomicU64::new(0),
            }),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the last Redis failure is under a second old (the local
    /// limits decide meanwhile).
    pub(crate) fn is_falling_back(&self) -> bool {
        self.now_ms() < self.inner.paused_until.load(Ordering::Relaxed)
    }

    /// Decisions the local limits took for want of Redis.
    pub(crate) fn fallbacks(&self) -> u64 {
        self.inner.fallbacks.load(Ordering::Relaxed)
    }

    /// Redis's decision for `key` in `class`; `None` when Redis cannot
    /// answer (the caller asks the local limits).
    async fn check(&self, class: &str, key: &str) -> Option<Result<(), RateLimitError>> {
        let (_, _, limiter) = self.inner.classes.iter().find(|(name, _, _)| *name == class)?;
        if self.is_falling_back() {
            self.inner.fallbacks.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match limiter.check(key, 1).await {
            Err(RateLimitError::Unavailable { reason }) => {
                tracing::debug!(%reason, "Redis limits unavailable; local limits decide");
                let until = self.now_ms() + u64::try_from(PAUSE_AFTER_FAILURE.as_millis()).unwrap_or(1_000);
                self.inner.paused_until.store(until, Ordering::Relaxed);
                self.inner.fallbacks.fetch_add(1, Ordering::Relaxed);
                None
            }
            other => Some(other),
        }
    }

    /// The Redis limiter's counters of `class`.
    pub(crate) fn stats(&self, class: &str) -> Option<brisk_rate_limiter::RedisStats> {
        self.inner
            .classes
            .iter()
            .find(|(name, _, _)| *name == class)
            .map(|(_, _, limiter)| limiter.stats())
    }

    fn per_minute(&self, class: &str) -> u64 {
        self.inner
            .classes
            .iter()
            .find(|(name, _, _)| *name == class)
            .map_or(0, |(_, n, _)| *n)
    }
}

/// The middleware on `/api/*` with `REDIS_URL`: Redis decides, or the local
/// limits when Redis cannot; a refusal is the layer's 429.
pub(crate) async fn enforce(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (Some(shared), Some(local)) = (&app.shared_limits, &app.limits) else {
        return next.run(request).await;
    };
    let class = class_for(request.uri().path());
    let key = client_key(request.headers(), request.extensions()).unwrap_or_else(|| "-".to_owned());
    let decision = match shared.check(class, &key).await {
        Some(decision) => decision,
        None => match local.limiter(class) {
            Some(limiter) => limiter.check(&key, 1),
            None => Ok(()),
        },
    };
    match decision {
        Ok(()) => next.run(request).await,
        Err(e) => too_many_requests(class, shared.per_minute(class), &e),
    }
}

/// The 429 of brisk-rate-limiter's layer: `Retry-After`, `RateLimit`,
/// `RateLimit-Policy` and the same JSON body.
fn too_many_requests(class: &str, per_minute: u64, err: &RateLimitError) -> Response {
    let retry = err.retry_after().unwrap_or_default();
    let retry_secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
    let body = serde_json::json!({
        "error": "rate_limited",
        "message": err.to_string(),
        "class": class,
        "window": class,
        "limit": per_minute,
        "period_secs": 60.0,
        "retry_after_secs": retry_secs,
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_secs));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (field, value) in [
        ("ratelimit-policy", format!("\"{class}\";q={per_minute};w=60")),
        ("ratelimit", format!("\"{class}\";r=0;t={retry_secs}")),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(field, value);
        }
    }
    response
}
