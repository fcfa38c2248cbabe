//! Each balancing strategy's distribution, passive ejection and return,
//! and the active health check against a real local HTTP server.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use brisk_core::ManualClock;
use brisk_pipeline::{Balancer, BreakerConfig, EjectionConfig, Endpoint, Pipeline, Strategy, TokioClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::Echo;

fn endpoints(weights: &[u32]) -> Vec<Endpoint> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| Endpoint::new(format!("ep{i}")).weight(w))
        .collect()
}

fn balancer(strategy: Strategy, weights: &[u32], clock: &ManualClock) -> Balancer {
    Balancer::new(
        endpoints(weights),
        strategy,
        &BreakerConfig::default(),
        // No cap here, so that every endpoint can be ejected.
        EjectionConfig::default()
            .after_failures(3)
            .eject_for(Duration::from_secs(10))
            .max_ejection_percent(100),
        clock.shared(),
    )
    .unwrap()
}

/// Picks `n` times (finishing each call at once) and counts per endpoint.
fn counts(b: &Balancer, n: u64, key: impl Fn(u64) -> u64) -> Vec<u64> {
    let mut counts = vec![0; b.endpoints().len()];
    for i in 0..n {
        let pick = b.pick(key(i)).unwrap();
        counts[pick.index()] += 1;
        pick.finish(true);
    }
    counts
}

#[test]
fn round_robin_takes_turns() {
    let clock = ManualClock::new();
    let b = balancer(Strategy::RoundRobin, &[1, 5, 1], &clock);
    assert_eq!(counts(&b, 300, |_| 0), [100, 100, 100]);
}

#[test]
fn weighted_follows_the_weights_smoothly() {
    let clock = ManualClock::new();
    let b = balancer(Strategy::Weighted, &[5, 3, 2], &clock);
    assert_eq!(counts(&b, 1000, |_| 0), [500, 300, 200]);
    // Smooth: the heavy endpoint never gets more than 2 in a row.
    let mut run = 0;
    for _ in 0..100 {
        let pick = b.pick(0).unwrap();
        run = if pick.index() == 0 { run + 1 } else { 0 };
        assert!(run <= 2);
        pick.finish(true);
    }
}

#[test]
fn least_outstanding_goes_where_fewest_calls_are_in_flight() {
    let clock = ManualClock::new();
    let b = balancer(Strategy::LeastOutstanding, &[1, 1, 1], &clock);
    // Hold 30 calls: they spread evenly.
    let held: Vec<_> = (0..30).map(|_| b.pick(0).unwrap()).collect();
    let load: Vec<usize> = b.stats().iter().map(|s| s.outstanding).collect();
    assert_eq!(load, [10, 10, 10]);
    // Finish ep1's calls: the next ten all go to ep1.
    let (ones, mut held): (Vec<_>, Vec<_>) = held.into_iter().partition(|p| p.index() == 1);
    for pick in ones {
        pick.finish(true);
    }
    let next: Vec<usize> = (0..10)
        .map(|_| b.pick(0).unwrap())
        .map(|p| {
            let i = p.index();
            held.push(p);
            i
        })
        .collect();
    assert_eq!(next, [1; 10]);
}

#[test]
fn power_of_two_keeps_loads_close() {
    let clock = ManualClock::new();
    let b = balancer(Strategy::PowerOfTwo, &[1, 1, 1, 1, 1, 1, 1, 1], &clock);
    let held: Vec<_> = (0..400).map(|_| b.pick(0).unwrap()).collect();
    let load: Vec<usize> = b.stats().iter().map(|s| s.outstanding).collect();
    let (min, max) = (load.iter().min().unwrap(), load.iter().max().unwrap());
    // Purely random choice would spread 50 ± 7 per endpoint; two choices stay within a few.
    assert!(max - min <= 4, "{load:?}");
    drop(held);
    assert!(b.stats().iter().all(|s| s.outstanding == 0));
    // Finished at once, it still spreads the calls.
    let c = counts(&b, 8000, |_| 0);
    assert!(c.iter().all(|&n| (800..=1200).contains(&n)), "{c:?}");
}

#[test]
fn consistent_hash_keeps_keys_in_place() {
    let clock = ManualClock::new();
    let b = balancer(Strategy::ConsistentHash, &[1, 1, 1], &clock);
    let place = |b: &Balancer, key: u64| {
        let pick = b.pick(key).unwrap();
        let i = pick.index();
        pick.finish(true);
        i
    };
    let before: Vec<usize> = (0..3000).map(|k| place(&b, k)).collect();
    let mut spread = [0; 3];
    for &i in &before {
        spread[i] += 1;
    }
    assert!(spread.iter().all(|&n| (800..=1200).contains(&n)), "{spread:?}");
    assert!((0..3000).all(|k| place(&b, k) == before[usize::try_from(k).unwrap()]));
    // Eject ep1 (3 failures): only its keys move.
    let on_ep1 = u64::try_from(before.iter().position(|&i| i == 1).unwrap()).unwrap();
    for _ in 0..3 {
        let pick = b.pick(on_ep1).unwrap();
        assert_eq!(pick.index(), 1);
        pick.finish(false);
    }
    let after: Vec<usize> = (0..3000).map(|k| place(&b, k)).collect();
    for (k, (&a, &b)) in before.iter().zip(&after).enumerate() {
        assert_ne!(b, 1, "key {k} still on the ejected endpoint");
        if a != 1 {
            assert_eq!(a, b, "key {k} moved");
        }
    }
}

#[test]
fn an_endpoint_is_ejected_after_consecutive_failures_and_returns() {
    let clock = ManualClock::new();
    let b = balancer(Strategy::RoundRobin, &[1, 1], &clock);
    let mut failures = 0;
    while failures < 3 {
        let pick = b.pick(0).unwrap();
        if pick.index() == 0 {
            pick.finish(false);
            failures += 1;
        } else {
            pick.finish(true);
        }
    }
    assert!(b.stats()[0].ejected);
    assert_eq!(counts(&b, 10, |_| 0), [0, 10]);
    clock.advance(Duration::from_secs(10));
    assert!(!b.stats()[0].ejected);
    assert_eq!(counts(&b, 10, |_| 0), [5, 5]);
    assert_eq!(b.stats()[0].ejections, 1);
    // With every endpoint ejected, the wait until the first returns.
    for i in 0..2 {
        for _ in 0..3 {
            let pick = loop {
                let p = b.pick(0).unwrap();
                if p.index() == i {
                    break p;
                }
                p.finish(true);
            };
            pick.finish(false);
        }
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(b.pick(0).unwrap_err(), Duration::from_secs(8));
}

#[test]
fn ejection_is_capped_so_that_not_all_endpoints_go() {
    let clock = ManualClock::new();
    // Four endpoints, the default cap of 50 %: two ejected at most.
    let b = Balancer::new(
        endpoints(&[1, 1, 1, 1]),
        Strategy::RoundRobin,
        &BreakerConfig::default(),
        EjectionConfig::default()
            .after_failures(2)
            .eject_for(Duration::from_secs(10)),
        clock.shared(),
    )
    .unwrap();
    let ejected = |b: &Balancer| b.stats().iter().filter(|s| s.ejected).count();
    // Every call fails on every endpoint (too few calls to open a breaker).
    for _ in 0..16 {
        b.pick(0).unwrap().finish(false);
    }
    assert_eq!(ejected(&b), 2);
    assert_eq!(b.stats().iter().map(|s| s.ejections).sum::<u64>(), 2);
    // The two left still take every call.
    let c = counts(&b, 10, |_| 0);
    assert_eq!(c.iter().filter(|&&n| n > 0).count(), 2, "{c:?}");
    let first: Vec<bool> = b.stats().iter().map(|s| s.ejected).collect();
    assert_eq!(first, [true, true, false, false]);
    // An endpoint over its threshold while the cap is reached stays in and
    // goes at its next failure once there is room.
    clock.advance(Duration::from_secs(10));
    assert_eq!(ejected(&b), 0);
    let fail_on = |i: usize| loop {
        let pick = b.pick(0).unwrap();
        if pick.index() == i {
            pick.finish(false);
            break;
        }
        pick.finish(true);
    };
    for i in [0, 0, 1, 1, 2, 2] {
        fail_on(i);
    }
    let state: Vec<bool> = b.stats().iter().map(|s| s.ejected).collect();
    assert_eq!(state, [true, true, false, false]);
    clock.advance(Duration::from_secs(10));
    fail_on(2);
    let state: Vec<bool> = b.stats().iter().map(|s| s.ejected).collect();
    assert_eq!(state, [false, false, true, false]);
    // One endpoint in two: one of them may go, never both.
    let b = Balancer::new(
        endpoints(&[1, 1]),
        Strategy::RoundRobin,
        &BreakerConfig::default(),
        EjectionConfig::default().after_failures(1),
        clock.shared(),
    )
    .unwrap();
    for _ in 0..10 {
        b.pick(0).unwrap().finish(false);
    }
    assert_eq!(ejected(&b), 1);
}

/// Waits (in paused tokio time, which the loopback I/O does not move) for
/// `cond`.
async fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition never held");
}

/// A tiny HTTP server: `GET /health` answers 200 or 503 as `healthy` says.
async fn health_server(healthy: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let healthy = Arc::clone(&healthy);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let status = if healthy.load(Ordering::SeqCst) {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr.to_string()
}

/// The health check the pipeline runs: an HTTP GET, healthy on a 2xx.
async fn http_ok(endpoint: Endpoint) -> bool {
    let Ok(mut conn) = TcpStream::connect(endpoint.name()).await else {
        return false;
    };
    let request = format!(
        "GET /health HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        endpoint.name()
    );
    if conn.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = conn.read_to_end(&mut response).await;
    response.starts_with(b"HTTP/1.1 2")
}

#[tokio::test(start_paused = true)]
async fn the_active_health_check_takes_an_endpoint_out_and_back() {
    let flags: Vec<_> = (0..2).map(|_| Arc::new(AtomicBool::new(true))).collect();
    let mut addrs = Vec::new();
    for f in &flags {
        addrs.push(health_server(Arc::clone(f)).await);
    }
    let echo = Echo::default();
    let pipeline = Pipeline::builder(echo.clone())
        .endpoints(addrs.iter().map(|a| Endpoint::new(a.as_str())))
        .health_check(Duration::from_secs(5), http_ok)
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    flags[1].store(false, Ordering::SeqCst);
    let p = pipeline.clone();
    eventually(move || !p.balancer().stats()[1].healthy).await;
    for i in 0..6 {
        assert!(pipeline.call(i).await.is_ok());
    }
    let mut per: HashMap<String, usize> = HashMap::new();
    for c in echo.calls() {
        *per.entry(c.endpoint).or_default() += 1;
    }
    assert_eq!(per.get(&addrs[0]), Some(&6));
    flags[1].store(true, Ordering::SeqCst);
    let p = pipeline.clone();
    eventually(move || p.balancer().stats()[1].healthy).await;
    for i in 0..6 {
        assert!(pipeline.call(i).await.is_ok());
    }
    assert!(echo.calls().iter().any(|c| c.endpoint == addrs[1]));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_health_check_times_out_as_a_failure() {
    let hang = Arc::new(AtomicBool::new(true));
    let h = Arc::clone(&hang);
    let pipeline = Pipeline::builder(Echo::default())
        .endpoints([Endpoint::new("hangs"), Endpoint::new("fine")])
        .health_check(Duration::from_secs(10), move |ep: Endpoint| {
            let hangs = ep.name() == "hangs" && h.load(Ordering::SeqCst);
            async move {
                if hangs {
                    std::future::pending::<()>().await;
                }
                true
            }
        })
        .health_check_timeout(Duration::from_secs(2))
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    let healthy =
        |p: &Pipeline<Echo>| -> Vec<bool> { p.balancer().stats().iter().map(|s| s.healthy).collect() };
    // The first round starts at once; the hanging check is still running.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(healthy(&pipeline), [true, true]);
    // At its 2 s timeout it fails, and the round goes on to "fine".
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(healthy(&pipeline), [false, true]);
    // Once it answers within the timeout it is back.
    hang.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(healthy(&pipeline), [true, true]);
}
