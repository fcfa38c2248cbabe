use brisk_monitor::Monitor;

use crate::exposition::{check_grammar, value_of};

#[test]
fn metrics_macros_land_in_the_monitor() {
    let monitor = Monitor::new();
    let recorder = monitor.recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_counter!("app.jobs_total", "Jobs finished");
        let jobs = metrics::counter!("app.jobs_total", "queue" => "mail");
        jobs.increment(2);
        jobs.increment(3);
        metrics::counter!("app.jobs_total", "queue" => "sms").increment(1);
        metrics::gauge!("app_inflight").set(4.0);
        metrics::gauge!("app_inflight").decrement(1.0);
        for v in 1..=100 {
            metrics::histogram!("app_latency_seconds", "op" => "send").record(f64::from(v) / 1000.0);
        }
    });
    let samples = check_grammar(&monitor.render_prometheus()).unwrap();
    assert_eq!(
        value_of(&samples, "app_jobs_total", &[("queue", "mail")]),
        Some(5.0)
    );
    assert_eq!(
        value_of(&samples, "app_jobs_total", &[("queue", "sms")]),
        Some(1.0)
    );
    assert_eq!(value_of(&samples, "app_inflight", &[]), Some(3.0));
    assert_eq!(
        value_of(&samples, "app_latency_seconds_count", &[("op", "send")]),
        Some(100.0)
    );
    let p50 = value_of(
        &samples,
        "app_latency_seconds_percentiles",
        &[("op", "send"), ("quantile", "0.5")],
    )
    .unwrap();
    assert!((p50 - 0.050).abs() <= 0.050 / 256.0, "{p50}");
    assert!(
        monitor
            .render_prometheus()
            .contains("# HELP app_jobs_total Jobs finished\n")
    );
    // The brisk handle and the facade share the series.
    assert_eq!(
        monitor
            .counter("app_jobs_total", "", &[("queue", "mail")])
            .unwrap()
            .get(),
        5
    );
}

#[test]
fn a_clashing_facade_key_is_refused_and_counted() {
    let monitor = Monitor::new();
    monitor.gauge("app_thing", "a gauge", &[]).unwrap().set(1.0);
    let recorder = monitor.recorder();
    metrics::with_local_recorder(&recorder, || metrics::counter!("app_thing").increment(1));
    assert_eq!(
        monitor
            .counter("brisk_monitor_recorder_conflicts_total", "", &[])
            .unwrap()
            .get(),
        1
    );
    assert_eq!(monitor.gauge("app_thing", "", &[]).unwrap().get(), 1.0);
}
