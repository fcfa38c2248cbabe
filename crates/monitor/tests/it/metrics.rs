use std::sync::Arc;
use std::time::Duration;

use brisk_core::{ManualClock, StatsReport, StatsSource};
use brisk_monitor::{Monitor, MonitorError};

fn manual() -> (ManualClock, Monitor) {
    let clock = ManualClock::new();
    let monitor = Monitor::builder().clock(clock.shared()).build().unwrap();
    (clock, monitor)
}

/// A small deterministic generator (xorshift64*), so the test needs no dependency.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[test]
fn percentiles_match_sorted_values_within_hdr_precision() {
    let monitor = Monitor::new();
    let h = monitor.histogram("brisk_test_seconds", "test", &[]).unwrap();
    let mut next = rng(42);
    let mut values = Vec::new();
    for i in 0..20_000 {
        // Log-spread values from 1 µs to ~1 s, plus a slow tail.
        let exp = (next() % 6) as i32;
        let v = (1 + next() % 1000) as f64 * 10f64.powi(exp - 9) + if i % 97 == 0 { 2.0 } else { 0.0 };
        h.record(v);
        values.push(v);
    }
    values.sort_by(f64::total_cmp);
    let snap = h.snapshot();
    assert_eq!(snap.count(), 20_000);
    let sum: f64 = values.iter().sum();
    assert!((snap.sum() - sum).abs() <= sum * 1e-6, "{} vs {sum}", snap.sum());
    for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
        let exact = exact_quantile(&values, q);
        let got = snap.quantile(q).unwrap();
        // bucket width ≤ 1/128 of its lower bound; midpoint within half of that,
        // plus the 1e-9 resolution rounding.
        assert!(
            (got - exact).abs() <= exact / 256.0 + 1e-9,
            "q={q}: got {got}, exact {exact}"
        );
    }
}

#[test]
fn uniform_thousand_gives_p50_near_500() {
    let monitor = Monitor::new();
    let h = monitor.histogram("brisk_uniform", "0..999", &[]).unwrap();
    for v in 0..1000 {
        h.record(f64::from(v));
    }
    let snap = h.snapshot();
    let p50 = snap.quantile(0.5).unwrap();
    assert!((p50 - 499.0).abs() <= 2.0, "p50 = {p50}");
    let p99 = snap.quantile(0.99).unwrap();
    assert!((p99 - 989.0).abs() <= 4.0, "p99 = {p99}");
    assert_eq!(snap.min(), Some(0.0));
    assert!((snap.max().unwrap() - 999.0).abs() <= 4.0);
    assert!((snap.mean().unwrap() - 499.5).abs() < 1e-6);
}

#[test]
fn rolling_windows_follow_the_manual_clock() {
    let (clock, monitor) = manual();
    let h = monitor.histogram("brisk_win_seconds", "w", &[]).unwrap();
    for v in 1..=100 {
        h.record(f64::from(v)); // batch A: 1..=100 at t = 0
    }
    monitor.tick();
    clock.advance(Duration::from_secs(30));
    for v in 1000..1100 {
        h.record(f64::from(v)); // batch B: 1000..1099 at t = 30 s
    }
    monitor.tick();
    assert_eq!(h.window(Duration::from_secs(60)).count(), 200);

    clock.advance(Duration::from_secs(35)); // t = 65 s: A is older than 1 min
    let one_min = h.window(Duration::from_secs(60));
    assert_eq!(one_min.count(), 100);
    let p50 = one_min.quantile(0.5).unwrap();
    assert!((p50 - 1049.0).abs() <= 1049.0 / 256.0, "p50 = {p50}");
    assert_eq!(h.window(Duration::from_secs(300)).count(), 200);
    // The trailing baseline from 5 min to 40 s ago holds A only.
    let older = h.between(Duration::from_secs(300), Duration::from_secs(40));
    assert_eq!(older.count(), 100);
    assert!((older.max().unwrap() - 100.0).abs() <= 100.0 / 256.0);

    clock.advance(Duration::from_secs(3600)); // everything is older than 1 h
    assert_eq!(h.window(Duration::from_secs(3600)).count(), 0);
    assert_eq!(h.snapshot().count(), 200, "cumulative keeps all");
}

#[test]
fn timer_guard_and_tracked_future_use_the_clock() {
    let (clock, monitor) = manual();
    let h = monitor.histogram("brisk_timed_seconds", "t", &[]).unwrap();
    {
        let _t = h.start_timer();
        clock.advance(Duration::from_millis(250));
    }
    let t = h.start_timer();
    clock.advance(Duration::from_millis(10));
    assert_eq!(t.stop(), Duration::from_millis(10));
    h.start_timer().cancel();
    let snap = h.snapshot();
    assert_eq!(snap.count(), 2);
    assert!((snap.sum() - 0.26).abs() < 1e-9);

    let op = monitor.operation("fetch").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let c = clock.clone();
    let ok: Result<u8, String> = rt.block_on(op.track(async move {
        c.advance(Duration::from_millis(40));
        Ok(1)
    }));
    assert_eq!(ok, Ok(1));
    let err: Result<u8, String> = rt.block_on(op.track(async { Err("no".to_owned()) }));
    assert!(err.is_err());
    let stats = op.stats(None);
    assert_eq!((stats.calls, stats.errors), (2, 1));
    assert!((stats.error_ratio() - 0.5).abs() < 1e-12);
    assert!((stats.durations.max().unwrap() - 0.040).abs() < 0.040 / 256.0);
    // Windowed errors come from the same ticks.
    monitor.tick();
    assert_eq!(op.stats(Some(Duration::from_secs(60))).errors, 1);
    clock.advance(Duration::from_secs(120));
    assert_eq!(op.stats(Some(Duration::from_secs(60))).calls, 0);
}

#[test]
fn handles_share_series_and_labels_tell_them_apart() {
    let monitor = Monitor::new();
    let a = monitor
        .counter("brisk_req_total", "r", &[("route", "/a"), ("method", "GET")])
        .unwrap();
    let a2 = monitor
        .counter("brisk_req_total", "r", &[("method", "GET"), ("route", "/a")])
        .unwrap();
    let b = monitor
        .counter("brisk_req_total", "r", &[("route", "/b")])
        .unwrap();
    a.inc();
    a2.add(4);
    b.inc();
    assert_eq!(a.get(), 5);
    assert_eq!(b.get(), 1);
    let g = monitor.gauge("brisk_conns", "c", &[]).unwrap();
    g.inc();
    g.inc();
    g.dec();
    assert_eq!(g.get(), 1.0);
}

#[test]
fn registration_errors_name_what_is_wrong() {
    let monitor = Monitor::new();
    monitor.counter("brisk_x_total", "x", &[]).unwrap();
    assert_eq!(
        monitor.gauge("brisk_x_total", "x", &[]).unwrap_err(),
        MonitorError::KindConflict {
            name: "brisk_x_total".into(),
            existing: "counter",
            requested: "gauge"
        }
    );
    assert!(matches!(
        monitor.counter("bad-name", "", &[]),
        Err(MonitorError::InvalidName { .. })
    ));
    assert!(matches!(
        monitor.histogram("brisk_h", "", &[("le", "1")]),
        Err(MonitorError::InvalidLabel { label, .. }) if label == "le"
    ));
    let e = Monitor::builder().buckets(vec![1.0, 0.5]).build().unwrap_err();
    assert_eq!(e.field(), "monitor.buckets");
    let e = Monitor::builder().precision_bits(0).build().unwrap_err();
    assert_eq!(e.field(), "monitor.precision_bits");
    let e = Monitor::builder().quantiles(vec![1.5]).build().unwrap_err();
    assert_eq!(e.field(), "monitor.quantiles");
    let e = Monitor::builder()
        .window_resolution(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "monitor.window_resolution");
}

#[derive(Debug, Default)]
struct FakeCache {
    hits: std::sync::atomic::AtomicU64,
}

impl StatsSource for FakeCache {
    fn report_stats(&self, out: &mut StatsReport) {
        let hits = self.hits.load(std::sync::atomic::Ordering::Relaxed);
        let _ = out
            .counter("brisk_cache_hits_total", "Hits", hits)
            .label("namespace", "users");
        let _ = out
            .counter("brisk_cache_misses_total", "Misses", 10)
            .label("namespace", "users");
    }
}

#[test]
fn collectors_are_read_at_scrape_time() {
    let monitor = Monitor::new();
    let cache = Arc::new(FakeCache::default());
    monitor.register("cache", cache.clone());
    cache.hits.store(90, std::sync::atomic::Ordering::Relaxed);
    let text = monitor.render_prometheus();
    assert!(text.contains("# TYPE brisk_cache_hits_total counter\n"), "{text}");
    assert!(text.contains("brisk_cache_hits_total{namespace=\"users\"} 90\n"));
    cache.hits.store(95, std::sync::atomic::Ordering::Relaxed);
    assert!(
        monitor
            .render_prometheus()
            .contains("brisk_cache_hits_total{namespace=\"users\"} 95\n")
    );
    assert!(monitor.unregister("cache"));
    assert!(!monitor.render_prometheus().contains("brisk_cache_hits_total"));
}

#[test]
fn two_threads_record_without_losing_counts() {
    let monitor = Monitor::new();
    let h = monitor.histogram("brisk_mt_seconds", "m", &[]).unwrap();
    let c = monitor.counter("brisk_mt_total", "m", &[]).unwrap();
    std::thread::scope(|s| {
        for t in 0..2 {
            let (h, c) = (h.clone(), c.clone());
            s.spawn(move || {
                for i in 0..50_000u32 {
                    h.record(f64::from(i + t));
                    c.inc();
                }
            });
        }
    });
    assert_eq!(h.snapshot().count(), 100_000);
    assert_eq!(c.get(), 100_000);
}

#[test]
fn a_histogram_series_holds_kilobytes_not_megabytes() {
    // Latency-like values, log-uniform over 1–50 ms (six powers of two in ns).
    let mut next = rng(11);
    let mut value = move || 1e-3 * 50f64.powf((next() >> 11) as f64 / (1u64 << 53) as f64);
    let (clock, monitor) = manual();
    let h = monitor.histogram("brisk_mem_seconds", "m", &[]).unwrap();
    let empty = h.heap_bytes();
    assert!(empty < 4 * 1024, "an unused series holds {empty} B");
    for _ in 0..1000 {
        h.record(value());
    }
    let one_slot = h.heap_bytes();
    // Only the groups the values fell in are allocated (1 KiB each at 7 bits),
    // not all 58 (58 KiB).
    assert!(one_slot < 12 * 1024, "after 1,000 values: {one_slot} B");

    // Steady state: 1,000 values every 10 s slot for 65 minutes, ticking each slot.
    for _ in 0..390 {
        monitor.tick();
        clock.advance(Duration::from_secs(10));
        for _ in 0..1000 {
            h.record(value());
        }
    }
    monitor.tick();
    let steady = h.heap_bytes();
    eprintln!("bytes per histogram series: empty {empty}, 1,000 values {one_slot}, 1 h of 100/s {steady}");
    // The hour is ~30 single slots + 55 one-minute blocks, not 360 slots.
    assert!(steady < 1024 * 1024, "after an hour: {steady} B");
    // And the windows still see the right counts.
    assert_eq!(h.window(Duration::from_secs(60)).count(), 6000);
    assert_eq!(h.window(Duration::from_secs(300)).count(), 30_000);
    let hour = h.window(Duration::from_secs(3600)).count();
    assert!((357_000..=363_000).contains(&hour), "1 h window: {hour}");
}
