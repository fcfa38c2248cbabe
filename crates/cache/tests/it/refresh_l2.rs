//! Refresh-ahead through the Redis L2 (real Redis from brisk-testkit), on a
//! manual clock and a queued executor: the test decides when a background
//! refresh runs. Each test skips itself under `BRISK_SKIP_SERVICES=1`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brisk_cache::{Cache, NamespaceConfig, TieredCache};
use brisk_core::ManualClock;

use crate::redis_l2::{eventually, raw};

const SEC: Duration = Duration::from_secs(1);

type Task = Box<dyn FnOnce() + Send>;
type Tiered = TieredCache<String, u32>;

/// Background refreshes, queued until the test runs them.
#[derive(Clone, Default)]
struct Queue(Arc<Mutex<Vec<Task>>>);

impl Queue {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Runs every queued refresh on a blocking thread, as
    /// `refresh_executor(|t| drop(tokio::task::spawn_blocking(t)))` would;
    /// returns how many ran.
    async fn run_all(&self) -> usize {
        let tasks: Vec<Task> = std::mem::take(&mut *self.0.lock().unwrap());
        let n = tasks.len();
        tokio::task::spawn_blocking(move || tasks.into_iter().for_each(|t| t()))
            .await
            .unwrap();
        n
    }
}

#[derive(Debug, thiserror::Error)]
#[error("upstream down")]
struct Down;

/// The upstream behind every node's reloader, set by the test.
#[derive(Default)]
struct Upstream {
    value: AtomicU32,
    failing: AtomicBool,
    calls: AtomicU32,
}

/// A node: its own L1 (60 s TTL, refreshed in the last 10 s, stale for up
/// to 30 s) on `clock`, its own refresh queue, Redis at `url` under `prefix`
/// with a 60 s L2 TTL.
fn node(url: &str, prefix: &str, clock: &ManualClock, queue: &Queue, upstream: &Arc<Upstream>) -> Tiered {
    let queue = queue.clone();
    let upstream = Arc::clone(upstream);
    let l1: Cache<String, u32> = Cache::builder()
        .namespace(
            "quotes",
            NamespaceConfig::new()
                .ttl(60 * SEC)
                .refresh_ahead(10 * SEC)
                .stale_limit(30 * SEC),
        )
        .clock(clock.shared())
        .reloader(move |ns: &str, _key: &String| {
            assert_eq!(ns, "quotes");
            upstream.calls.fetch_add(1, Ordering::SeqCst);
            if upstream.failing.load(Ordering::SeqCst) {
                Err(Down)
            } else {
                Ok(upstream.value.load(Ordering::SeqCst))
            }
        })
        .refresh_executor(move |task| queue.0.lock().unwrap().push(task))
        .build()
        .unwrap();
    TieredCache::builder(l1, url)
        .prefix(prefix)
        .namespace_l2_ttl("quotes", 60 * SEC)
        .timeout(2 * SEC)
        .build()
        .unwrap()
        .namespace("quotes")
        .unwrap()
}

/// Shortens the Redis copy of `key` (real time) to `ms` milliseconds.
fn expire_soon(url: &str, cache: &Tiered, key: &str, ms: u64) {
    let set: bool = redis::cmd("PEXPIRE")
        .arg(cache.redis_key(&key.to_owned()))
        .arg(ms)
        .query(&mut raw(url))
        .unwrap();
    assert!(set, "the key is in Redis");
}

/// Two nodes on one Redis and one key prefix, sharing a manual clock and
/// an upstream, each with its own refresh queue.
struct TwoNodes {
    clock: ManualClock,
    upstream: Arc<Upstream>,
    qa: Queue,
    qb: Queue,
    a: Tiered,
    b: Tiered,
}

fn two_nodes(kv: &brisk_testkit::TestRedis) -> TwoNodes {
    let prefix = kv.key("c");
    let clock = ManualClock::new();
    let upstream = Arc::new(Upstream::default());
    let (qa, qb) = (Queue::default(), Queue::default());
    let a = node(kv.url(), &prefix, &clock, &qa, &upstream);
    let b = node(kv.url(), &prefix, &clock, &qb, &upstream);
    TwoNodes {
        clock,
        upstream,
        qa,
        qb,
        a,
        b,
    }
}

fn pttl(url: &str, cache: &Tiered, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(cache.redis_key(&key.to_owned()))
        .query(&mut raw(url))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_reloads_once_writes_through_and_other_nodes_pick_it_up() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let TwoNodes {
        clock,
        upstream,
        qa,
        qb,
        a,
        b,
    } = two_nodes(&kv);
    eventually("both nodes subscribed", || a.is_subscribed() && b.is_subscribed()).await;
    let abc = "ABC".to_owned();

    a.insert(abc.clone(), 1).await.unwrap();
    eventually("b applies a's insert message", || {
        b.l2_stats().invalidations_received == 1
    })
    .await;
    assert_eq!(b.get(&abc).await, Some(1), "b reads a's value from Redis");
    upstream.value.store(2, Ordering::SeqCst);
    // Redis's clock is real: make its copy as old as the L1s' will be.
    expire_soon(kv.url(), &a, "ABC", 5_000);

    clock.advance(49 * SEC);
    assert_eq!(a.get(&abc).await, Some(1));
    assert_eq!(qa.len(), 0, "no refresh before the window");
    clock.advance(2 * SEC); // 51 s: in the last 10 s
    for _ in 0..5 {
        assert_eq!(a.get(&abc).await, Some(1), "the current value, at once");
    }
    assert_eq!(qa.len(), 1, "one background reload for all the reads");
    let loaded = a
        .get_or_load(abc.clone(), || async { Err::<u32, _>(Down) })
        .await
        .unwrap();
    assert_eq!(loaded, 1, "a load of the key is a hit on the current value");

    clock.advance(14 * SEC); // 65 s: past the TTL, the reload not run yet
    assert_eq!(a.get(&abc).await, Some(1), "served stale while refreshing");
    assert_eq!(a.l1().stats().stale_hits, 1);
    assert_eq!(
        upstream.calls.load(Ordering::SeqCst),
        0,
        "nothing ran in a reader"
    );

    assert_eq!(qa.run_all().await, 1);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1, "the reloader ran once");
    assert_eq!(a.get(&abc).await, Some(2));
    let s = a.l1().stats();
    assert_eq!((s.refreshes, s.loads, s.load_errors), (1, 1, 0));
    assert_eq!(a.l2_stats().writes, 2, "the insert, then the refresh");
    let l2 = a.l2_stats();
    assert_eq!(l2.hits + l2.misses, 1, "the refresh looked at Redis first");
    assert!(
        pttl(kv.url(), &a, "ABC") > 50_000,
        "written through with a full L2 TTL"
    );

    // b drops its old copy on a's message and reads the new one from Redis.
    eventually("b applies a's refresh message", || {
        b.l2_stats().invalidations_received == 2
    })
    .await;
    assert_eq!(b.l1().get("ABC"), None, "b's L1 dropped the old value");
    assert_eq!(b.get(&abc).await, Some(2));
    assert_eq!(qb.len(), 0, "b started no reload of its own");
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);

    // The refreshed L1 entry lives a full TTL from the refresh (65 s + 60 s).
    clock.advance(59 * SEC);
    assert!(a.l1().contains_key("ABC"));
    clock.advance(SEC);
    assert!(!a.l1().contains_key("ABC"), "expired a TTL after the refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_takes_a_fresher_copy_from_redis_instead_of_reloading() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let TwoNodes {
        clock,
        upstream,
        qa,
        qb: _,
        a,
        b,
    } = two_nodes(&kv);
    let abc = "ABC".to_owned();

    a.insert(abc.clone(), 1).await.unwrap();
    // Another node refreshed the entry; its message has not reached a.
    b.insert_l2(&abc, &3).await.unwrap();

    clock.advance(51 * SEC);
    assert_eq!(a.get(&abc).await, Some(1));
    assert_eq!(qa.run_all().await, 1);
    assert_eq!(
        upstream.calls.load(Ordering::SeqCst),
        0,
        "Redis's copy outlives the window: no reload"
    );
    assert_eq!(a.get(&abc).await, Some(3), "the copy from Redis");
    let s = a.l1().stats();
    assert_eq!((s.refreshes, s.loads), (1, 1));
    assert_eq!(a.l2_stats().hits, 1);
    assert_eq!(a.l2_stats().writes, 1, "nothing written back");
    // It is kept for its remaining Redis TTL (under 60 s, real time).
    clock.advance(60 * SEC);
    assert!(!a.l1().contains_key("ABC"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_serving_stale_and_writes_nothing() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let prefix = kv.key("c");
    let clock = ManualClock::new();
    let upstream = Arc::new(Upstream::default());
    let queue = Queue::default();
    let a = node(kv.url(), &prefix, &clock, &queue, &upstream);
    let abc = "ABC".to_owned();

    a.insert(abc.clone(), 1).await.unwrap();
    expire_soon(kv.url(), &a, "ABC", 5_000);
    upstream.failing.store(true, Ordering::SeqCst);
    clock.advance(55 * SEC);
    assert_eq!(a.get(&abc).await, Some(1));
    assert_eq!(queue.run_all().await, 1);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
    assert_eq!(a.l1().stats().load_errors, 1);
    assert_eq!(a.l2_stats().writes, 1, "a failed reload writes nothing");

    clock.advance(10 * SEC); // 65 s: past the TTL, within the stale limit
    assert_eq!(a.get(&abc).await, Some(1), "stale after the failure");
    assert_eq!(queue.len(), 1, "a stale read retries once");
    upstream.failing.store(false, Ordering::SeqCst);
    upstream.value.store(4, Ordering::SeqCst);
    assert_eq!(queue.run_all().await, 1);
    assert_eq!(a.get(&abc).await, Some(4));
    assert_eq!(a.l2_stats().writes, 2, "the successful retry is written through");
    assert!(pttl(kv.url(), &a, "ABC") > 50_000);
}
