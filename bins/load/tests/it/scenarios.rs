use std::net::SocketAddr;
use std::time::Duration;

use brisk_load::{BreakingPointSearch, HttpRun, Mix, Sla, StopSignal, Target};

use crate::server;

fn run(addr: SocketAddr, path: &str) -> HttpRun {
    let target = Target::parse(&format!("http://{addr}"), false).unwrap();
    // A lenient SLA by default: these tests run beside each other (and other
    // builds) on a small machine; the ones about the SLA set their own.
    HttpRun::new(target, Mix::single_get(path).unwrap())
        .connections(32)
        .metrics_path(None)
        .sla(Sla {
            p99_ms: 1_000.0,
            max_error_rate: 0.01,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaking_point_is_within_ten_percent_of_the_true_capacity() {
    let _serial = server::TIMING.lock().await;
    // 20 at a time x 100 ms each: 200 requests/s. A long service time keeps
    // timer overshoot on a busy machine small next to it.
    let (k, service) = (20, Duration::from_millis(100));
    #[allow(clippy::cast_precision_loss)]
    let capacity = k as f64 / service.as_secs_f64();
    let addr = server::capacity(k, service).await;
    // Over capacity the queue grows by (rate - capacity) x time: 5% over
    // for 2 s adds 100 ms, which the 200 ms p99 target does not allow.
    let report = run(addr, "/work")
        .sla(Sla {
            p99_ms: 200.0,
            max_error_rate: 0.01,
        })
        .connections(64)
        .breaking_point(BreakingPointSearch {
            start_rate: 60.0,
            max_rate: 2_000.0,
            trial_duration: Duration::from_secs(2),
            growth: 2.0,
            precision: 0.03,
            max_trials: 12,
        })
        .await
        .unwrap();
    let bp = report.breaking_point.as_ref().unwrap();
    let found = bp.last_passing_rps.expect("some rate passed");
    assert!(
        (found - capacity).abs() <= 0.10 * capacity,
        "breaking point {found:.1} req/s, true capacity {capacity:.1}\n{}",
        report.to_table()
    );
    let failing = bp.first_failing_rps.expect("some rate failed");
    assert!(
        failing > found && failing <= found * 1.03 + 1e-9,
        "{failing} vs {found}"
    );
    assert!(bp.trials.iter().any(|t| !t.pass) && report.verdict.pass);
    // The trials ramp geometrically first: 60, 120, 240.
    let rates: Vec<f64> = bp.trials.iter().take(3).map(|t| t.rate).collect();
    assert_eq!(rates, vec![60.0, 120.0, 240.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_up_in_p99_measured_from_the_intended_send_time() {
    let _serial = server::TIMING.lock().await;
    // 200 requests/s for 3 s over one connection (a closed-loop client's
    // view when timed from the actual send); the server stalls for 600 ms
    // after 1 s.
    let addr = server::stalling(Duration::from_millis(1000), Duration::from_millis(600)).await;
    let report = run(addr, "/fast")
        .connections(1)
        .sla(Sla {
            p99_ms: 100.0,
            max_error_rate: 0.01,
        })
        .load(200.0, Duration::from_secs(3))
        .await
        .unwrap();
    let s = &report.summary;
    assert_eq!(s.completed, 600, "{}", report.to_table());
    assert_eq!(s.errors, 0);
    // ~120 requests were due during the stall: well over 1%.
    assert!(s.latency_ms.p99 >= 300.0, "corrected p99 {}", s.latency_ms.p99);
    assert!(s.latency_ms.max >= 500.0, "corrected max {}", s.latency_ms.max);
    // Timed from the actual send, only the one request in flight saw it.
    assert!(
        s.service_ms.p99 < 50.0,
        "service p99 {} hides the stall",
        s.service_ms.p99
    );
    assert!(s.service_ms.max >= 500.0);
    assert!(!report.verdict.pass, "p99 over 100 ms fails the SLA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_steps_the_rate_and_judges_each_step() {
    let addr = server::capacity(64, Duration::from_millis(1)).await;
    let report = run(addr, "/fast")
        .stress(40.0, 40.0, 3, Duration::from_millis(500))
        .await
        .unwrap();
    let phases: Vec<(String, f64, u64)> = report
        .phases
        .iter()
        .map(|p| (p.name.clone(), p.rate, p.completed))
        .collect();
    assert_eq!(
        phases,
        vec![
            ("step 1".into(), 40.0, 20),
            ("step 2".into(), 80.0, 40),
            ("step 3".into(), 120.0, 60)
        ]
    );
    assert_eq!(report.summary.completed, 120);
    assert!(
        report.phases.iter().all(|p| p.verdict.pass),
        "{}",
        report.to_table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spike_reports_the_recovery_time() {
    let _serial = server::TIMING.lock().await;
    // Capacity 200/s; baseline 60/s; the 5x spike (300/s for 0.5 s) builds
    // a backlog of ~50 requests that drains at ~140/s: ~0.36 s.
    let addr = server::capacity(20, Duration::from_millis(100)).await;
    let report = run(addr, "/work")
        .sla(Sla {
            p99_ms: 200.0,
            max_error_rate: 0.01,
        })
        .connections(64)
        .window(Duration::from_millis(100))
        .spike(
            60.0,
            5.0,
            Duration::from_secs(1),
            Duration::from_millis(500),
            Duration::from_secs(3),
        )
        .await
        .unwrap();
    let spike = report.spike.as_ref().unwrap();
    assert!(
        spike.spike_p99_ms > spike.baseline_p99_ms * 1.5,
        "{}",
        report.to_table()
    );
    let recovery = spike.recovery_s.expect("it recovers");
    assert!(
        (0.1..=2.5).contains(&recovery),
        "recovery {recovery} s\n{}",
        report.to_table()
    );
    assert_eq!(
        report.phases.iter().map(|p| p.rate).collect::<Vec<_>>(),
        vec![60.0, 300.0, 60.0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_server_trend_from_metrics() {
    let addr = server::capacity(8, Duration::from_millis(1)).await;
    let report = run(addr, "/fast")
        .metrics_path(Some("/metrics".into()))
        .soak(50.0, Duration::from_millis(1500))
        .await
        .unwrap();
    let server = report.server.as_ref().expect("a trend");
    assert_eq!(server.rss_end_mb, Some(50.0));
    assert!(server.samples.len() >= 2);
    assert_eq!(server.cpu_percent_mean, Some(0.0));
    let soak = report.soak.as_ref().unwrap();
    assert!(soak.p99_first_ms > 0.0 && soak.p99_last_ms > 0.0);
    assert_eq!(soak.rss_slope_mb_per_min, Some(0.0));

    // A server without /metrics: no trend, a note, the run still passes.
    let report = run(addr, "/fast")
        .metrics_path(Some("/nope".into()))
        .load(20.0, Duration::from_millis(500))
        .await
        .unwrap();
    assert!(report.server.is_none());
    assert!(report.notes.iter().any(|n| n.contains("/metrics")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_signal_ends_the_run_with_a_partial_report() {
    let addr = server::capacity(8, Duration::from_millis(1)).await;
    let stop = StopSignal::new();
    let fire = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        fire.stop();
    });
    let began = std::time::Instant::now();
    let report = run(addr, "/fast")
        .stop_signal(stop)
        .load(100.0, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(began.elapsed() < Duration::from_secs(5));
    assert!(report.partial);
    assert!(report.summary.completed > 10 && report.summary.completed < report.summary.planned);
    assert!(report.to_table().contains("partial"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_bound_every_run() {
    let addr = server::capacity(8, Duration::from_millis(1)).await;
    let report = run(addr, "/fast")
        .max_requests(25)
        .load(100.0, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(report.summary.completed, 25);
    assert!(report.notes.iter().any(|n| n.contains("--max-requests")));

    let report = run(addr, "/fast")
        .max_time(Duration::from_millis(400))
        .load(100.0, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(report.partial);
    assert!(report.summary.completed < 60, "{}", report.summary.completed);
    assert!(report.notes.iter().any(|n| n.contains("--max-time")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_by_status_and_fail_the_sla() {
    let addr = server::capacity(8, Duration::from_millis(1)).await;
    let report = run(addr, "/missing")
        .load(50.0, Duration::from_millis(400))
        .await
        .unwrap();
    assert_eq!(report.summary.statuses.get("404"), Some(&20));
    assert!((report.summary.error_rate - 1.0).abs() < 1e-9);
    assert!(!report.verdict.pass);
    assert!(report.verdict.reasons.iter().any(|r| r.contains("errors")));

    // Nothing listening: connection errors, not a hang.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let report = run(closed, "/")
        .load(20.0, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(report.summary.statuses.get("connect_error"), Some(&6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_render_as_json_and_self_contained_html() {
    let addr = server::capacity(8, Duration::from_millis(1)).await;
    let report = run(addr, "/fast")
        .load(50.0, Duration::from_millis(600))
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["summary"]["completed"], 30);
    assert_eq!(json["verdict"]["pass"], true);
    assert!(json["summary"]["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    let html = report.to_html();
    assert!(html.starts_with("<!doctype html>"));
    assert_eq!(html.matches("<svg").count(), 2, "latency and throughput plots");
    assert!(html.contains("<polyline"));
    assert!(
        !html.contains("<script") && !html.contains("<link"),
        "no external assets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_connections_after_each_response_is_not_an_error() {
    let addr = server::capacity(8, Duration::from_millis(1)).await;
    let report = run(addr, "/close")
        .connections(4)
        .load(50.0, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        report.summary.statuses.get("200"),
        Some(&50),
        "{}",
        report.to_table()
    );
    assert_eq!(report.summary.errors, 0);
}
