//! brisk-rate-limiter: rate limits for both directions a service has them.
//!
//! **Outbound**, toward AI and social APIs that cap requests *and* tokens per
//! minute and cost money; **inbound**, toward your own endpoints, per client
//! and per class of route. GCRA (the algorithm of governor) underneath, with
//! what governor's users keep asking for:
//!
//! - [`RateLimiter`] (one state) and [`KeyedRateLimiter`] (one state per
//!   key), built by [`RateLimiterBuilder`]: several windows ([`Quota`]: per
//!   second, minute, hour, day) checked **all or nothing**, weighted costs
//!   (tokens, micro-dollars), [`check`](RateLimiter::check),
//!   [`peek`](RateLimiter::peek) (spends nothing) and
//!   [`refund`](RateLimiter::refund); per-key overrides changeable at run
//!   time ([`KeyedRateLimiter::set_override`]).
//! - [`RateLimitError`]: which window rejected and when to retry; a cost no
//!   window could ever take is an immediate error, not an endless wait.
//! - [`acquire`](RateLimiter::acquire): waits first come, first served per
//!   key, fair to heavy requests, cancel-safe, with a deadline variant
//!   ([`acquire_until`](RateLimiter::acquire_until)).
//! - Bounded keyed memory: `max_keys`, and idle keys dropped as new ones
//!   arrive (no caller-run `retain_recent`); the key count is a stat
//!   ([`RateLimiterStats`], also a [`brisk_core::StatsSource`]).
//! - [`UpstreamLimits`]: parses `Retry-After`, OpenAI's
//!   `x-ratelimit-*`, RFC 3339 resets and the IETF `RateLimit` fields;
//!   [`apply_upstream`](RateLimiter::apply_upstream) pauses the limiter
//!   until upstream's reset.
//! - With `redis`: `RedisRateLimiter`, GCRA in a Lua script with Redis's
//!   time, shared exactly by many processes, fail open or closed, shadow mode.
//! - With `tower`: `RateLimitLayer`, per client and per route class, 429
//!   with `Retry-After` and `RateLimit` headers, one state for every clone.
//!
//! Time comes from a [`brisk_core::Clock`]: by default
//! [`MonotonicCoarseClock`] (`CLOCK_MONOTONIC_COARSE` through the vDSO on
//! Linux: monotonic, a few ns a read, kernel-tick resolution; `Instant`
//! elsewhere; never a raw TSC read, which can go backwards across cores),
//! [`SystemClock`] for `Instant`'s precision, a [`ManualClock`] in tests.
//! [`CoarseClock`] reads in one atomic load kept current by a thread.
//!
//! [`SystemClock`]: brisk_core::SystemClock
//! [`ManualClock`]: brisk_core::ManualClock
//!
//! # Example: outbound, an LLM API's requests and tokens
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use brisk_core::ManualClock;
//! use brisk_rate_limiter::{Quota, RateLimitError, RateLimiter, UpstreamLimits};
//!
//! let clock = ManualClock::new();
//! // 20 requests a minute and 1,000 an hour; 40,000 tokens a minute.
//! let requests = RateLimiter::builder()
//!     .quota(Quota::per_minute(20).named("rpm"))
//!     .quota(Quota::per_hour(1_000).named("rph"))
//!     .clock(clock.shared())
//!     .build()?;
//! let tokens = RateLimiter::builder()
//!     .quota(Quota::per_minute(40_000).named("tpm"))
//!     .clock(clock.shared())
//!     .build()?;
//!
//! // Before a call: one request, and the tokens we estimate it will use.
//! let estimate = 1_500;
//! tokens.peek(estimate)?; // check the tokens first, so a refusal spends no request
//! requests.check(1)?;
//! tokens.check(estimate)?;
//!
//! // After it: give back what it did not use, and heed upstream's headers.
//! let used = 900;
//! tokens.refund(estimate - used);
//! let limits = UpstreamLimits::from_headers(
//!     [("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "6m0s")],
//!     SystemTime::now(),
//! );
//! assert_eq!(requests.apply_upstream(&limits), Some(Duration::from_secs(360)));
//! match requests.check(1) {
//!     Err(RateLimitError::Paused { retry_after }) => assert_eq!(retry_after.as_secs(), 360),
//!     other => panic!("{other:?}"),
//! }
//!
//! // A prompt larger than the minute's budget can never pass: an error now.
//! assert!(matches!(tokens.check(50_000), Err(RateLimitError::CostTooLarge { window: 0, .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Waiting instead of failing: `requests.acquire(1).await` sleeps (on
//! tokio's timer) until the request may go, in arrival order.
//!
//! # Example: inbound, per client and per route class (axum)
//!
//! With the `tower` feature:
//!
//! ```
//! # #[cfg(feature = "tower")]
//! # {
//! use axum::{Router, routing::get};
//! use brisk_rate_limiter::{KeySource, Quota, RateLimitLayer};
//!
//! let limits = RateLimitLayer::builder()
//!     .key(KeySource::Header(http::HeaderName::from_static("x-api-key")))
//!     .class("default", [Quota::per_minute(60)])
//!     .class("ml", [Quota::per_minute(100), Quota::per_hour(1_000), Quota::per_day(10_000)])
//!     .class("admin", [Quota::per_minute(10), Quota::per_hour(50), Quota::per_day(200)])
//!     .route("/api/ml/", "ml")
//!     .route("/admin/", "admin")
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/api/ml/score", get(|| async { "0.93" }))
//!     .route("/admin/users", get(|| async { "[]" }))
//!     .layer(limits.clone());
//! // Over the limit: 429 with Retry-After, RateLimit-Policy, RateLimit and a
//! // JSON body. Tiers per client, at run time:
//! limits.limiter("ml").unwrap().set_override("partner-key".into(), [Quota::per_minute(1_000)])?;
//! # let _ = app;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics of a window
//!
//! A [`Quota`] of `limit` per `period` has one of two shapes:
//!
//! - a **token bucket** (the default, governor's semantics): up to its
//!   burst (default `limit`, or [`Quota::burst`]) at once, capacity back at
//!   `limit / period`; over any interval of length `d` it admits at most
//!   `burst + limit × d / period`, so up to `limit + burst − 1` in one
//!   period;
//! - a **strict window** ([`Quota::strict`]): never more than `limit` in
//!   any interval of length `period`, up to `burst` at once, and a slower
//!   refill (`limit + 1 − burst` per period) to pay for it.
//!
//! Property tests check exactly these bounds over random sequences of
//! weighted requests and clock advances. Several windows combine: a
//! request passes only if every window has room, and then spends in all.
//!
//! ```
//! use std::time::Duration;
//! use brisk_core::ManualClock;
//! use brisk_rate_limiter::{Quota, RateLimiter};
//!
//! let clock = ManualClock::new();
//! // Never more than 100 in any minute, up to 10 at once.
//! let strict = RateLimiter::builder()
//!     .quota(Quota::per_minute(100).strict(10))
//!     .clock(clock.shared())
//!     .build()?;
//! strict.check(10)?;
//! assert!(strict.check(1).is_err());
//! clock.advance(Duration::from_nanos(60_000_000_000u64.div_ceil(91))); // one unit back
//! strict.check(1)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! - `redis`: `RedisRateLimiter`, `RedisRateLimiterBuilder`,
//!   `FailurePolicy`, `RedisStats` (the `redis` crate's async client with
//!   its tokio connection manager).
//! - `tower`: `RateLimitLayer`, `RateLimit`, `KeySource`,
//!   `UpstreamLimits::from_header_map` (`tower`, `http`, `futures-util`,
//!   `serde_json`).
//! - `axum`: with `tower`, `KeySource::PeerIp` also reads axum's
//!   `ConnectInfo<SocketAddr>`.
//!
//! No feature is on by default: the in-process limiters need no server.
//!
//! # Implementation notes
//!
//! - **Engine.** Each window of each key is one `AtomicU64` holding GCRA's
//!   theoretical arrival time, as in governor. One window is one
//!   compare-and-swap; a direct limiter with one window takes a fast path
//!   that does governor's work and no more (the cost check, one CAS loop),
//!   and reads the default clock without a virtual call. Several windows are spent one by one and given back
//!   if a later one refuses: a concurrent caller may briefly see less room
//!   than there is (and be refused), never more, so no window ever
//!   over-admits. governor itself is not used underneath: its state cannot
//!   be spent conditionally across windows, refunded or reserved ahead.
//! - **Waiting.** `acquire` reserves its slot at once (the TAT moves into
//!   the future) and sleeps until the slot conforms. Reservation order is
//!   service order, and a cost-10 request waits for 10 units, not for a
//!   moment when 10 are free at once, so it cannot starve. A dropped waiter
//!   gives its slot back if nobody queued behind it; otherwise the slot
//!   stays spent, so nobody already queued is overtaken.
//! - **Keys.** A sharded hash table (foldhash, hashbrown, one `RwLock` per
//!   cache-line-padded shard) maps a key to a slot in a slab of TATs: about
//!   44 bytes per key with one window and 62 with three, at 1M keys. A key
//!   whose windows are all full again carries no information; those are
//!   dropped when a shard has doubled since its last sweep, and past
//!   `max_keys` the keys closest to idle go first.
//! - **Redis.** One string per key holds the windows' debts (TAT − time of
//!   last write) with Redis's `TIME`; the Lua script checks and spends all
//!   windows atomically, so processes sharing a key admit exactly the quota.
//!   See `docs/rate-limiter.md`.

mod adaptive;
mod clock;
mod direct;
#[cfg(feature = "redis")]
mod distributed;
mod error;
mod gcra;
mod keyed;
#[cfg(feature = "tower")]
mod middleware;
mod quota;
mod shared;

pub use adaptive::{LimitStatus, Policy, UpstreamLimits};
pub use clock::{CoarseClock, MonotonicCoarseClock};
pub use direct::{RateLimiter, RateLimiterBuilder};
#[cfg(feature = "redis")]
pub use distributed::{FailurePolicy, RedisRateLimiter, RedisRateLimiterBuilder, RedisStats};
pub use error::RateLimitError;
pub use keyed::KeyedRateLimiter;
#[cfg(feature = "tower")]
pub use middleware::{KeyFn, KeySource, RateLimit, RateLimitLayer, RateLimitLayerBuilder, ResponseFuture};
pub use quota::Quota;
pub use shared::RateLimiterStats;
