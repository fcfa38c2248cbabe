//! brisk-pipeline in front of a (simulated) sentiment model served by two
//! nodes, one of them failing.
//!
//! ```text
//! cargo run -p brisk-examples --example pipeline_sentiment          # 400 posts
//! cargo run -p brisk-examples --example pipeline_sentiment -- 2000  # 2,000 posts
//! ```
//!
//! Posts arrive all at once, one in ten urgent, and many repeat (the same
//! text from several accounts). The pipeline answers repeats once
//! (single-flight on the content hash), groups the rest into batches of up
//! to 20 per call, spreads calls over the two nodes by least outstanding
//! requests, keeps to 40 calls a second (a brisk-rate-limiter limiter), and
//! retries the failing node's 503s on the other node. Node "b" fails its
//! first calls; after 3 failures in a row it is ejected for 5 s. If a post
//! still cannot be scored, the fallback answers a neutral 0.5.
//!
//! It prints a summary: posts, model calls, repeats answered by
//! single-flight, the mean batch size, calls per node, and the mean wait of
//! urgent and background posts.

use std::fmt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use brisk_core::{Backoff, ContentHash, Priority, SharedClock, SystemClock};
use brisk_pipeline::{
    BatchResult, Classify, EjectionConfig, Endpoint, Handler, Job, Pipeline, PipelineError, Strategy,
};
use brisk_rate_limiter::{Quota, RateLimiter};

/// The model API's error: an HTTP status and its Retry-After.
#[derive(Clone, Debug)]
struct ApiError {
    status: u16,
    retry_after: Option<Duration>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model API answered {}", self.status)
    }
}

impl Classify for ApiError {
    fn is_retryable(&self) -> bool {
        self.status == 429 || self.status >= 500
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// The simulated model: 20 ms per call plus 1 ms per post; node "b" answers
/// 503 to its first `b_failures` calls.
struct Model {
    b_failures: AtomicU32,
}

impl Handler for Model {
    type Request = String;
    type Response = f32;
    type Error = ApiError;

    async fn call(&self, endpoint: &Endpoint, posts: &[String]) -> BatchResult<f32, ApiError> {
        let items = u32::try_from(posts.len()).unwrap_or(u32::MAX);
        tokio::time::sleep(Duration::from_millis(20) + Duration::from_millis(1) * items).await;
        if endpoint.name() == "b"
            && self
                .b_failures
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(ApiError {
                status: 503,
                retry_after: Some(Duration::from_millis(50)),
            });
        }
        Ok(posts.iter().map(|p| Ok(score(p))).collect())
    }

    fn fallback(&self, _post: &String, _error: &PipelineError<ApiError>) -> Option<f32> {
        Some(0.5)
    }
}

/// A stand-in for the model: the share of "good" words.
fn score(post: &str) -> f32 {
    let words: Vec<&str> = post.split_whitespace().collect();
    let good = words
        .iter()
        .filter(|w| ["up", "great", "beats"].contains(w))
        .count();
    #[allow(clippy::cast_precision_loss)] // a handful of words
    let s = good as f32 / words.len().max(1) as f32;
    s
}

/// What a run did.
#[derive(Debug, PartialEq)]
struct Summary {
    posts: usize,
    calls: u64,
    dedup_hits: u64,
    mean_batch: f64,
    calls_per_node: Vec<(String, u64)>,
    fallbacks: u64,
    urgent_wait: Duration,
    background_wait: Duration,
}

async fn run(posts: usize, clock: SharedClock) -> Result<Summary, Box<dyn std::error::Error>> {
    let calls_per_second = RateLimiter::builder()
        .quota(Quota::per_second(40))
        .clock(clock.clone())
        .build()?;
    let pipeline = Pipeline::builder(Model {
        b_failures: AtomicU32::new(3),
    })
    .name("sentiment")
    .endpoints([Endpoint::new("a"), Endpoint::new("b")])
    .strategy(Strategy::LeastOutstanding)
    .ejection(
        EjectionConfig::default()
            .after_failures(3)
            .eject_for(Duration::from_secs(5)),
    )
    .min_workers(2)
    .max_workers(8)
    .max_batch_size(20)
    .max_batch_wait(Duration::from_millis(50))
    .backoff(
        Backoff::builder()
            .base(Duration::from_millis(20))
            .max_attempts(4)
            .build()?,
    )
    .limit(calls_per_second, |_| 1)
    .clock(clock)
    .build()?;

    let companies = ["$ABC", "$XYZ", "$QRS", "$LMN", "$DEF"];
    let moods = ["is up", "is down", "beats estimates", "misses", "looks great"];
    let mut tickets = Vec::with_capacity(posts);
    for i in 0..posts {
        // 25 distinct texts: most posts repeat one of them.
        let text = format!("{} {} today", companies[i % 5], moods[(i / 5) % 5]);
        let priority = match i % 10 {
            0 => Priority::Urgent,
            1..=3 => Priority::High,
            4..=7 => Priority::Normal,
            8 => Priority::Low,
            _ => Priority::Background,
        };
        let key = ContentHash::of_parts(&["sentiment", text.as_str()]);
        tickets.push(
            pipeline
                .submit(Job::new(text).priority(priority).key(key))
                .await?,
        );
    }
    for t in tickets {
        let s = t.await?;
        assert!((0.0..=1.0).contains(&s));
    }
    let report = pipeline.shutdown(Duration::from_secs(5)).await;
    assert!(report.drained);
    let stats = pipeline.stats();
    Ok(Summary {
        posts,
        calls: stats.execs,
        dedup_hits: stats.dedup_hits,
        mean_batch: stats.mean_batch_size(),
        calls_per_node: stats
            .endpoints
            .iter()
            .map(|e| (e.name.clone(), e.calls))
            .collect(),
        fallbacks: stats.fallbacks,
        urgent_wait: stats.mean_wait(Priority::Urgent),
        background_wait: stats.mean_wait(Priority::Background),
    })
}

fn main() -> ExitCode {
    let posts = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(400);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pipeline_sentiment: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(posts, SystemClock::shared())) {
        Ok(summary) => {
            println!("{summary:#?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pipeline_sentiment: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brisk_pipeline::TokioClock;

    #[test]
    fn repeats_are_answered_once_and_the_failing_node_is_routed_around() {
        // Tokio's paused time: the simulated latencies take no real time.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let s = rt.block_on(run(400, TokioClock::shared())).unwrap();
        assert_eq!(s.posts, 400);
        // 25 distinct texts: every other post joined one in flight.
        assert!(s.dedup_hits >= 400 - 25 * 4, "{s:?}");
        // The failing node's 503s were retried: nobody needed the fallback.
        assert_eq!(s.fallbacks, 0, "{s:?}");
        let b = s.calls_per_node.iter().find(|(n, _)| n == "b").unwrap().1;
        let a = s.calls_per_node.iter().find(|(n, _)| n == "a").unwrap().1;
        assert!(a > 0 && b > 0, "{s:?}");
        assert!(s.calls < 400, "{s:?}");
    }
}
