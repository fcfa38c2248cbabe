//! Scenario runner for brisk-rate-limiter's own integration tests
//! (`tests/it`), and for nothing else: it is built only with the `redis`
//! feature, and a crate that depends on the library never builds it.
//!
//! Exactness across OS processes can only be checked with several
//! processes, so the tests start several copies of this one:
//!
//! ```text
//! brisk-rate-limiter-scenario hammer <redis-url> <prefix> <key> <attempts> <limit-per-day>
//! ```
//!
//! `hammer` makes `<attempts>` checks of cost 1 on `<key>` (8 at a time)
//! against a `RedisRateLimiter` of `<limit-per-day>` per day, fail closed,
//! prints `admitted <n> limited <m>`, and, if every attempt got an answer
//! from Redis, `scenario hammer: ok` as its last line. A failed check
//! panics (exit status 101).

use brisk_rate_limiter::{FailurePolicy, Quota, RateLimitError, RedisRateLimiter};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["hammer", url, prefix, key, attempts, limit] => hammer(
            url,
            prefix,
            key,
            attempts.parse().expect("attempts: a number"),
            limit.parse().expect("limit: a number"),
        ),
        _ => panic!(
            "usage: brisk-rate-limiter-scenario hammer <url> <prefix> <key> <attempts> <limit> (got {args:?})"
        ),
    }
    println!("scenario hammer: ok");
}

fn hammer(url: &str, prefix: &str, key: &str, attempts: u64, limit: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (admitted, limited) = runtime.block_on(async {
        let limiter = RedisRateLimiter::builder(url)
            .quota(Quota::per_day(limit))
            .prefix(prefix)
            .failure_policy(FailurePolicy::Closed)
            .timeout(std::time::Duration::from_secs(5))
            .local_cache_keys(0) // every attempt asks Redis
            .build()
            .expect("valid configuration");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let limiter = limiter.clone();
                let key = key.to_owned();
                let n = attempts / 8 + u64::from(i < attempts % 8);
                tokio::spawn(async move {
                    let (mut ok, mut limited) = (0u64, 0u64);
                    for _ in 0..n {
                        match limiter.check(&key, 1).await {
                            Ok(()) => ok += 1,
                            Err(RateLimitError::Limited { .. }) => limited += 1,
                            Err(other) => panic!("Redis did not answer: {other}"),
                        }
                    }
                    (ok, limited)
                })
            })
            .collect();
        let mut totals = (0, 0);
        for task in tasks {
            let (ok, limited) = task.await.expect("task");
            totals.0 += ok;
            totals.1 += limited;
        }
        totals
    });
    assert_eq!(admitted + limited, attempts);
    println!("admitted {admitted} limited {limited}");
}
