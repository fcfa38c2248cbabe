//! History, SLA reports, persistence through a store, recommendations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use brisk_core::{ManualClock, StatsReport, StatsSource, Timestamp};
use brisk_monitor::{
    History, HistoryStore, MemoryStore, MinuteAggregate, Monitor, RecommendationKind, SlaObjectives,
    StoreError, StoreFuture,
};

const MIN: Duration = Duration::from_secs(60);

fn manual() -> (ManualClock, Monitor) {
    let clock = ManualClock::new();
    let monitor = Monitor::builder().clock(clock.shared()).build().unwrap();
    (clock, monitor)
}

#[tokio::test]
async fn minute_aggregates_make_an_sla_report() {
    let (clock, monitor) = manual();
    let history = History::builder(&monitor)
        .latency_target(Duration::from_millis(100))
        .operation_target("generate", Duration::from_secs(1))
        .build()
        .unwrap();
    let analyze = monitor.operation("analyze").unwrap();
    let generate = monitor.operation("generate").unwrap();
    for _ in 0..120 {
        clock.advance(MIN);
        for i in 0..100u64 {
            // 98% under 100 ms; 1 error in 100.
            let ms = if i < 98 { 10 + i / 2 } else { 300 };
            analyze.record(Duration::from_millis(ms), i != 50);
        }
        generate.record(Duration::from_millis(800), true);
        let rows = history.roll().await.unwrap();
        assert_eq!(rows.len(), 2);
    }
    assert!(history.roll().await.unwrap().is_empty(), "nothing new");

    let r = history.report(Duration::from_secs(3600), &SlaObjectives::default());
    assert_eq!(
        r.to,
        Timestamp::from_unix_millis(1_735_689_600_000 + 120 * 60_000)
    );
    let a = r.operations.iter().find(|o| o.name == "analyze").unwrap();
    assert_eq!(a.requests, 60 * 100, "last hour only");
    assert_eq!(a.errors, 60);
    assert!((a.availability - 0.99).abs() < 1e-12);
    assert!((a.latency_compliance - 0.98).abs() < 1e-12);
    assert!(!a.sla_met);
    // L = (0.98 - 0.5) / 0.49 = 0.98; A = (0.99 - 0.9) / 0.099 = 0.909 → 49 + 45.5 = 94.5 → 95 (f64 rounding: 94 or 95)
    assert!((94..=95).contains(&a.score), "{}", a.score);
    // p95 is the 95th of 100 calls: 10 + 94 / 2 = 57 ms.
    assert!((a.worst_p95_ms - 57.0).abs() < 57.0 / 128.0, "{}", a.worst_p95_ms);
    let g = r.operations.iter().find(|o| o.name == "generate").unwrap();
    assert_eq!(
        (g.requests, g.latency_target_ms, g.sla_met, g.score),
        (60, 1000.0, true, 100)
    );
    assert!(r.health_score >= 94 && r.health_score <= 95);
    // analyze: 60 × (Σ 10 + i/2 ms + 2 × 300 ms) = 60 × 3.932 s = 235.9 s; generate 60 × 0.8 = 48 s.
    assert_eq!(r.bottlenecks[0].name, "analyze");
    let share = r.bottlenecks[0].share_of_time;
    assert!((share - 235.92 / 283.92).abs() < 0.01, "{share}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["operations"][0]["name"], "analyze");

    let day = history.report(Duration::from_secs(24 * 3600), &SlaObjectives::default());
    assert_eq!(day.operations[0].requests, 120 * 100);
}

#[tokio::test]
async fn history_survives_a_restart_through_the_store() {
    let store = MemoryStore::new();
    let (clock, monitor) = manual();
    {
        let history = History::builder(&monitor).store(store.clone()).build().unwrap();
        let op = monitor.operation("ingest").unwrap();
        for _ in 0..30 {
            clock.advance(MIN);
            op.record(Duration::from_millis(5), true);
            history.roll().await.unwrap();
        }
    }
    assert_eq!(store.len(), 30);
    // "Restart": a new monitor and history on the same clock and store.
    let monitor2 = Monitor::builder().clock(clock.shared()).build().unwrap();
    let history2 = History::builder(&monitor2).store(store.clone()).build().unwrap();
    assert_eq!(history2.restore().await.unwrap(), 30);
    let r = history2.report(Duration::from_secs(3600), &SlaObjectives::default());
    assert_eq!(r.operations[0].requests, 30);
    // Retention: rows older than it are not loaded.
    clock.advance(Duration::from_secs(24 * 3600 - 10 * 60));
    let history3 = History::builder(&monitor2).store(store).build().unwrap();
    // Rows at minutes 20..=30 are within 24 h of now (24 h 20 min).
    assert_eq!(history3.restore().await.unwrap(), 11);
}

#[derive(Debug)]
struct BrokenStore;

impl HistoryStore for BrokenStore {
    fn save<'a>(&'a self, _: &'a [MinuteAggregate]) -> StoreFuture<'a, ()> {
        Box::pin(async { Err(StoreError("disk full".into())) })
    }
    fn load_since(&self, _: Timestamp) -> StoreFuture<'_, Vec<MinuteAggregate>> {
        Box::pin(async { Err(StoreError("disk full".into())) })
    }
}

#[tokio::test]
async fn a_failing_store_keeps_rows_in_memory_and_counts() {
    let (_clock, monitor) = manual();
    let history = History::builder(&monitor).store(BrokenStore).build().unwrap();
    monitor
        .operation("x")
        .unwrap()
        .record(Duration::from_millis(1), true);
    assert_eq!(history.roll().await.unwrap_err(), StoreError("disk full".into()));
    assert_eq!(history.rows().len(), 1);
    assert_eq!(
        monitor
            .counter("brisk_monitor_history_store_failures_total", "", &[])
            .unwrap()
            .get(),
        1
    );
    assert!(history.restore().await.is_err());
}

#[derive(Debug, Default)]
struct Stats {
    queue: AtomicU64,
}

impl StatsSource for Stats {
    fn report_stats(&self, out: &mut StatsReport) {
        let _ = out
            .gauge("brisk_db_pool_waiting", "w", 4.0)
            .label("backend", "postgres");
        let _ = out
            .gauge("brisk_db_pool_in_use", "u", 10.0)
            .label("backend", "postgres");
        let _ = out
            .gauge("brisk_db_pool_max_size", "m", 10.0)
            .label("backend", "postgres");
        let _ = out
            .counter("brisk_cache_hits_total", "h", 600)
            .label("namespace", "users");
        let _ = out
            .counter("brisk_cache_misses_total", "m", 400)
            .label("namespace", "users");
        let _ = out
            .counter("brisk_cache_evictions_total", "e", 300)
            .label("namespace", "users")
            .label("cause", "size");
        let _ = out
            .counter("brisk_cache_hits_total", "h", 990)
            .label("namespace", "tags");
        let _ = out
            .counter("brisk_cache_misses_total", "m", 10)
            .label("namespace", "tags");
        #[allow(clippy::cast_precision_loss)]
        let _ = out.gauge(
            "brisk_pipeline_queue_depth",
            "d",
            self.queue.load(Ordering::Relaxed) as f64,
        );
    }
}

#[tokio::test]
async fn recommendations_from_pool_cache_and_queue_stats() {
    let (clock, monitor) = manual();
    let stats = Arc::new(Stats::default());
    monitor.register("stats", stats.clone());
    let history = History::builder(&monitor).build().unwrap();
    for depth in [10, 20, 30, 40, 50] {
        stats.queue.store(depth, Ordering::Relaxed);
        history.roll().await.unwrap();
        clock.advance(MIN);
    }
    let kinds = |h: &History| h.recommendations().iter().map(|r| r.kind).collect::<Vec<_>>();
    assert_eq!(
        kinds(&history),
        [
            RecommendationKind::RaisePoolSize,
            RecommendationKind::RaiseCacheCapacity
        ]
    );
    stats.queue.store(60, Ordering::Relaxed);
    history.roll().await.unwrap();
    let recs = history.recommendations();
    assert_eq!(
        recs.iter().map(|r| r.kind).collect::<Vec<_>>(),
        [
            RecommendationKind::RaisePoolSize,
            RecommendationKind::RaiseCacheCapacity,
            RecommendationKind::AddWorkers
        ]
    );
    assert_eq!(recs[1].subject, "brisk_cache{namespace=\"users\"}");
    assert!(recs[2].message.contains("10 → 60"), "{}", recs[2].message);
    stats.queue.store(5, Ordering::Relaxed);
    history.roll().await.unwrap();
    assert_eq!(kinds(&history).len(), 2, "the queue shrank");
}

#[test]
fn builders_and_objectives_name_fields() {
    let monitor = Monitor::new();
    assert_eq!(
        History::builder(&monitor)
            .retention(Duration::from_secs(1))
            .build()
            .unwrap_err()
            .field(),
        "history.retention"
    );
    assert_eq!(
        History::builder(&monitor)
            .latency_target(Duration::ZERO)
            .build()
            .unwrap_err()
            .field(),
        "history.latency_target"
    );
    assert_eq!(
        SlaObjectives::default()
            .latency(0.2)
            .validate()
            .unwrap_err()
            .field(),
        "sla.latency"
    );
    assert_eq!(
        SlaObjectives::default()
            .availability(2.0)
            .validate()
            .unwrap_err()
            .field(),
        "sla.availability"
    );
}
