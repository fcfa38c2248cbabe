//! brisk-core: the vocabulary every brisk crate shares.
//!
//! It holds types and traits only — no async runtime, no servers, a handful
//! of tiny dependencies — so any crate can depend on it cheaply:
//!
//! - [`Priority`]: five ordered request priorities.
//! - [`ContentHash`]: a stable 128-bit hash of a text (xxh3-128), for cache
//!   keys and memo tables shared across processes and releases.
//! - [`Post`]: an ingested short text, validated by [`Post::validate`] against
//!   [`PostLimits`]; [`Timestamp`] is its UTC time.
//! - [`Clock`]: monotonic and wall time, from the [`SystemClock`] or a
//!   [`ManualClock`] that tests advance instead of sleeping.
//! - [`Backoff`]: the one retry policy (exponential, full jitter, cap,
//!   Retry-After), and [`parse_retry_after`].
//! - [`StatsSource`]: how a component shows its counters to a monitor.
//! - [`ConfigError`] and [`ParseError`]: the errors builders and parsers share.
//!
//! # Example
//!
//! Validate incoming posts, key them by content, and retry a flaky call:
//!
//! ```
//! use std::time::Duration;
//! use brisk_core::{Backoff, ContentHash, Post, PostError, PostLimits, Priority, Timestamp};
//!
//! let limits = PostLimits::default().max_text_chars(280);
//! let now = Timestamp::from_unix_millis(1_795_343_400_000);
//!
//! let good = Post::new("1", "Big news for $ABC today", now).with_author("@newsdesk");
//! good.validate(&limits)?;
//! assert_eq!(good.content_hash(), ContentHash::of("Big news for $ABC today"));
//!
//! let empty = Post::new("2", "   ", now);
//! assert_eq!(empty.validate(&limits), Err(PostError::Empty { field: "text" }));
//!
//! let long = Post::new("3", "x".repeat(281), now);
//! let err = long.validate(&limits).unwrap_err();
//! assert_eq!(err.to_string(), "post text is 281 characters long, over the maximum of 280");
//!
//! assert!(Priority::Urgent > Priority::Background);
//!
//! let policy = Backoff::builder().base(Duration::from_millis(10)).max_attempts(3).build()?;
//! let mut retries = policy.retries();
//! let mut attempts = 0;
//! let result = loop {
//!     attempts += 1;
//!     let outcome: Result<&str, &str> = if attempts < 3 { Err("busy") } else { Ok("done") };
//!     match (outcome, retries.next_delay()) {
//!         (Ok(v), _) => break Ok(v),
//!         (Err(e), None) => break Err(e),
//!         (Err(_), Some(delay)) => assert!(delay <= Duration::from_millis(20)), // sleep(delay) here
//!     }
//! };
//! assert_eq!(result, Ok("done"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Stability
//!
//! [`ContentHash`] values never change between releases: they key persistent
//! stores. Its tests pin it to vectors from the reference implementation.

mod backoff;
mod clock;
mod error;
mod hash;
mod post;
mod priority;
mod stats;
mod timestamp;

pub use backoff::{Backoff, BackoffBuilder, Retries, parse_retry_after};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use error::{ConfigError, ParseError};
pub use hash::ContentHash;
pub use post::{Engagement, Post, PostError, PostLimits};
pub use priority::Priority;
pub use stats::{
    Metric, MetricLabels, MetricValue, StatsReport, StatsSource, is_valid_label_name, is_valid_metric_name,
};
pub use timestamp::Timestamp;
