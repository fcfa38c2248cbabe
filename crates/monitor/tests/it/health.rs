//! Health checks, the score, and the JSON summary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use brisk_core::{ManualClock, StatsReport, StatsSource};
use brisk_monitor::{CheckOutcome, HealthChecks, HealthStatus, Monitor, SummaryOptions};

#[tokio::test(start_paused = true)]
async fn checks_run_with_timeouts_and_score_by_weight() {
    let db_up = Arc::new(AtomicBool::new(true));
    let up = db_up.clone();
    let checks = HealthChecks::builder()
        .check_with("db", Duration::from_secs(1), 2, true, move || {
            let up = up.load(Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                if up {
                    CheckOutcome::healthy("pool 3/10")
                } else {
                    CheckOutcome::unhealthy("connection refused")
                }
            }
        })
        .check("cache", Duration::from_secs(1), || async {
            CheckOutcome::degraded("hit ratio 60%")
        })
        .check("llm", Duration::from_millis(500), || async {
            tokio::time::sleep(Duration::from_secs(60)).await; // hangs
            CheckOutcome::healthy("never")
        })
        .build()
        .unwrap();
    assert!(checks.last().is_none());

    let r = checks.run().await;
    let names: Vec<_> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["db", "cache", "llm"]);
    assert_eq!(r.checks[0].status, HealthStatus::Healthy);
    assert!(
        r.checks[0].latency >= Duration::from_millis(30),
        "{:?}",
        r.checks[0].latency
    );
    assert_eq!(r.checks[2].status, HealthStatus::Unhealthy);
    assert_eq!(r.checks[2].detail, "timed out after 500ms");
    // (2·100 + 1·50 + 1·0) / 4 = 62.5 → 63
    assert_eq!(r.score, 63);
    assert_eq!(
        r.status,
        HealthStatus::Degraded,
        "the unhealthy check is not critical"
    );

    db_up.store(false, Ordering::SeqCst);
    let r = checks.run().await;
    assert_eq!(r.status, HealthStatus::Unhealthy, "a critical check failed");
    assert_eq!(r.score, 13); // 50 / 4 = 12.5 → 13
    assert_eq!(checks.last().unwrap(), r);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["status"], "unhealthy");
    assert_eq!(json["checks"][0]["detail"], "connection refused");
    assert!(json["checks"][0]["latency"].as_f64().unwrap() >= 30.0);
}

#[tokio::test(start_paused = true)]
async fn spawned_checks_run_on_their_interval() {
    use std::sync::atomic::AtomicUsize;
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let checks = Arc::new(
        HealthChecks::builder()
            .check("db", Duration::from_secs(1), move || {
                let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                async move { CheckOutcome::healthy(format!("run {n}")) }
            })
            .build()
            .unwrap(),
    );
    let task = checks.spawn(Duration::from_secs(15));
    // Paused tokio time: each sleep advances the clock at once.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the first run is immediate");
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!(checks.last().unwrap().checks[0].detail, "run 4");
    task.abort();
}

#[test]
fn health_builder_names_the_check() {
    let e = HealthChecks::builder()
        .check("db", Duration::ZERO, || async { CheckOutcome::healthy("") })
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "health.checks.db.timeout");
    let e = HealthChecks::builder()
        .check("a", Duration::from_secs(1), || async {
            CheckOutcome::healthy("")
        })
        .check("a", Duration::from_secs(1), || async {
            CheckOutcome::healthy("")
        })
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "health.checks.a");
}

#[tokio::test]
async fn no_checks_is_healthy_with_full_score() {
    let r = HealthChecks::builder().build().unwrap().run().await;
    assert_eq!((r.status, r.score), (HealthStatus::Healthy, 100));
}

#[derive(Debug)]
struct Cache;

impl StatsSource for Cache {
    fn report_stats(&self, out: &mut StatsReport) {
        let _ = out
            .counter("brisk_cache_hits_total", "h", 80)
            .label("namespace", "sentiment");
        let _ = out
            .counter("brisk_cache_misses_total", "m", 20)
            .label("namespace", "sentiment");
    }
}

#[test]
fn json_summary_per_operation_cache_and_slowest() {
    let clock = ManualClock::new();
    let monitor = Monitor::builder().clock(clock.shared()).build().unwrap();
    monitor.register("cache", Arc::new(Cache));
    let analyze = monitor.operation("analyze").unwrap();
    let ingest = monitor.operation("ingest").unwrap();
    let generate = monitor.operation("generate").unwrap();
    // Old calls, outside the window.
    for _ in 0..10 {
        analyze.record(Duration::from_secs(3), true);
    }
    monitor.tick();
    clock.advance(Duration::from_secs(600));
    for i in 1..=100u64 {
        analyze.record(Duration::from_millis(i), i % 10 != 0); // 10% errors, 1..100 ms
        ingest.record(Duration::from_millis(5), true);
    }
    for _ in 0..3 {
        generate.record(Duration::from_millis(400), true);
    }
    monitor.tick();
    let s = monitor.summary(
        &SummaryOptions::default()
            .window(Duration::from_secs(60))
            .slow_threshold(Duration::from_millis(90)),
    );
    let a = s.operations.iter().find(|o| o.name == "analyze").unwrap();
    assert_eq!((a.count, a.total_count), (100, 110));
    assert!((a.rate_per_sec - 100.0 / 60.0).abs() < 1e-9);
    assert!((a.error_rate - 0.1).abs() < 1e-12);
    assert!((a.p50_ms.unwrap() - 50.0).abs() < 0.5, "{:?}", a.p50_ms);
    assert!((a.p95_ms.unwrap() - 95.0).abs() < 0.5);
    assert!((a.p99_ms.unwrap() - 99.0).abs() < 0.5);
    let names: Vec<_> = s.slowest.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["generate", "analyze"], "p95 over 90 ms, slowest first");
    assert_eq!(s.caches.len(), 1);
    assert_eq!(s.caches[0].metric, "brisk_cache");
    assert_eq!(s.caches[0].labels["namespace"], "sentiment");
    assert_eq!(s.caches[0].hit_rate, Some(0.8));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["caches"][0]["hit_rate"], 0.8);
    assert_eq!(json["generated_at"], "2025-01-01T00:10:00.000Z");
    assert!(
        SummaryOptions::default()
            .window(Duration::ZERO)
            .validate()
            .is_err()
    );
}
