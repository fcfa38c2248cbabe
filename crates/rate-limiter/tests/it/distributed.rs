//! The Redis backend, on real throwaway Redis servers from brisk-testkit.

use std::process::{Command, Stdio};
use std::time::Duration;

use brisk_core::StatsReport;
use brisk_rate_limiter::{FailurePolicy, Quota, RateLimitError, RedisRateLimiter};

fn limiter(url: &str, prefix: &str, quotas: impl IntoIterator<Item = Quota>) -> RedisRateLimiter {
    RedisRateLimiter::builder(url)
        .quotas(quotas)
        .prefix(prefix)
        .failure_policy(FailurePolicy::Closed)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("valid configuration")
}

#[tokio::test]
async fn windows_are_all_or_nothing_in_one_call() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let l = limiter(
        kv.url(),
        kv.prefix(),
        [
            Quota::per_minute(10).named("minute"),
            Quota::per_hour(3).named("hour"),
        ],
    );
    for _ in 0..3 {
        l.check("k", 1).await.unwrap();
    }
    let l_nocache = RedisRateLimiter::builder(kv.url())
        .quotas([
            Quota::per_minute(10).named("minute"),
            Quota::per_hour(3).named("hour"),
        ])
        .prefix(kv.prefix())
        .local_cache_keys(0)
        .failure_policy(FailurePolicy::Closed)
        .build()
        .unwrap();
    for _ in 0..50 {
        match l_nocache.check("k", 1).await.unwrap_err() {
            RateLimitError::Limited {
                window,
                quota,
                retry_after,
            } => {
                assert_eq!((window, quota.name()), (1, Some("hour")));
                assert!(retry_after > Duration::from_secs(1100) && retry_after <= Duration::from_secs(1200));
            }
            other => panic!("{other:?}"),
        }
    }
    // The minute window holds only the 3 admitted: 3 × 6 s of debt, not 53.
    let mut con = redis::Client::open(kv.url()).unwrap().get_connection().unwrap();
    let state: String = redis::cmd("GET").arg(kv.key("k")).query(&mut con).unwrap();
    let fields: Vec<f64> = state.split(',').map(|f| f.parse().unwrap()).collect();
    assert_eq!(fields.len(), 4, "{state}");
    assert!(fields[2] <= 18e9 && fields[2] > 17e9, "minute debt {state}");
    assert!(l.peek("k", 1).await.is_err());
    l.peek("fresh", 3).await.unwrap();
    assert!(matches!(
        l.check("k", 4).await,
        Err(RateLimitError::CostTooLarge { window: 1, .. })
    ));
}

#[tokio::test]
async fn strict_windows_have_the_same_semantics_in_redis() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let day = 86_400_000_000_000u64;
    // 10 a day, strict, burst 4: 4 at once, then one every day / 7.
    let l = limiter(kv.url(), kv.prefix(), [Quota::per_day(10).strict(4)]);
    l.check("s", 2).await.unwrap();
    l.check("s", 2).await.unwrap();
    let interval = Duration::from_nanos(day.div_ceil(7));
    match l.check("s", 1).await.unwrap_err() {
        RateLimitError::Limited { retry_after, .. } => {
            assert!(retry_after <= interval && retry_after > interval - Duration::from_secs(600));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        l.check("s", 5).await,
        Err(RateLimitError::CostTooLarge { window: 0, .. })
    ));
    // Strict with the whole limit as burst: 10 at once, then nothing for a
    // day (a token bucket would give one back every 2.4 hours).
    let all = limiter(
        kv.url(),
        kv.prefix(),
        [Quota::per_day(10).strict(10).named("day")],
    );
    all.check("all", 10).await.unwrap();
    let wait = all.check("all", 1).await.unwrap_err().retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(86_400 - 600) && wait <= Duration::from_secs(86_400),
        "{wait:?}"
    );
    let bucket = limiter(kv.url(), kv.prefix(), [Quota::per_day(10)]);
    bucket.check("bucket", 10).await.unwrap();
    let wait = bucket
        .check("bucket", 1)
        .await
        .unwrap_err()
        .retry_after()
        .unwrap();
    assert!(
        wait > Duration::from_secs(8_640 - 600) && wait <= Duration::from_secs(8_640),
        "{wait:?}"
    );
}

#[tokio::test]
async fn rejected_keys_are_cached_locally() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let l = limiter(kv.url(), kv.prefix(), [Quota::per_minute(2)]);
    l.check("a", 2).await.unwrap();
    assert!(l.check("a", 1).await.is_err());
    let err = l.check("a", 1).await.unwrap_err();
    assert!(err.retry_after().unwrap() <= Duration::from_secs(30));
    let stats = l.stats();
    assert_eq!((stats.allowed, stats.limited, stats.cache_hits), (1, 2, 1));
    l.check("b", 1).await.unwrap(); // other keys still ask Redis
    let report = StatsReport::collect(&l);
    assert_eq!(
        report.value("brisk_rate_limiter_redis_cache_hits_total"),
        Some(1.0)
    );
}

#[tokio::test]
async fn shadow_mode_decides_but_never_rejects() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let l = RedisRateLimiter::builder(kv.url())
        .quota(Quota::per_minute(3))
        .prefix(kv.prefix())
        .shadow(true)
        .build()
        .unwrap();
    for _ in 0..10 {
        l.check("k", 1).await.unwrap();
    }
    let stats = l.stats();
    assert_eq!((stats.allowed, stats.shadow_rejections, stats.limited), (3, 7, 0));
}

/// Four OS processes hammer one key for a fixed count: together they admit
/// exactly the quota.
#[test]
fn four_processes_admit_exactly_the_quota() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_brisk-rate-limiter-scenario"))
                .args(["hammer", kv.url(), kv.prefix(), "shared", "700", "1000"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a scenario process")
        })
        .collect();
    let mut admitted = 0;
    for child in children {
        let out = child.wait_with_output().expect("scenario process");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.lines().last(), Some("scenario hammer: ok"), "{stdout}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("admitted "))
            .expect("a count");
        admitted += line.split(' ').nth(1).unwrap().parse::<u64>().unwrap();
    }
    // 2,800 attempts within seconds; a day's quota of 1,000 refills < 1 in that time.
    assert_eq!(admitted, 1000);
}

#[tokio::test]
async fn fail_open_and_fail_closed_when_redis_stops() {
    let Some(mut server) = brisk_testkit::redis_server() else {
        return;
    };
    let url = server.url();
    let build = |policy| {
        RedisRateLimiter::builder(url.as_str())
            .quota(Quota::per_minute(100))
            .failure_policy(policy)
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap()
    };
    let (open, closed) = (build(FailurePolicy::Open), build(FailurePolicy::Closed));
    open.check("k", 1).await.unwrap();
    closed.check("k", 1).await.unwrap();

    server.stop().unwrap();
    for _ in 0..3 {
        open.check("k", 1).await.unwrap();
        match closed.check("k", 1).await {
            Err(RateLimitError::Unavailable { reason }) => assert!(!reason.is_empty()),
            other => panic!("fail closed must refuse: {other:?}"),
        }
    }
    assert_eq!(open.stats().failed_open, 3);
    assert_eq!(closed.stats().failed_closed, 3);

    server.start_again().unwrap();
    // Reconnects by itself (the script is reloaded into the empty server).
    let mut answered = false;
    for _ in 0..50 {
        if closed.check("k", 1).await.is_ok() && open.check("k", 1).await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // reconnect back-off, real time
    }
    assert!(
        answered,
        "no answer after restart: {:?} {:?}",
        open.stats(),
        closed.stats()
    );
    assert!(closed.stats().allowed >= 2);
}

#[test]
fn builder_checks_redis_settings() {
    let e = RedisRateLimiter::builder("redis://127.0.0.1/")
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "quotas");
    let e = RedisRateLimiter::builder("redis://127.0.0.1/")
        .quota(Quota::per_day(101 * 1000).named("x"))
        .quota(Quota::new(1, Duration::from_secs(101 * 86_400)))
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "quotas[1].period");
    // A strict window holding its whole limit for 1,000 days of debt is
    // beyond the script's exact arithmetic (2^53 ns).
    let e = RedisRateLimiter::builder("redis://127.0.0.1/")
        .quota(Quota::per_day(1000).strict(1000))
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "quotas[0].burst");
    let e = RedisRateLimiter::builder("nope://")
        .quota(Quota::per_second(1))
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "url");
    let e = RedisRateLimiter::builder("redis://127.0.0.1/")
        .quota(Quota::per_second(1))
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "timeout");
}
