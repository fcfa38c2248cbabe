//! Times an operation and serves `/metrics` (Prometheus) and `/summary` (JSON).
//!
//! ```text
//! cargo run -p brisk-examples --example monitor_metrics            # serves on 127.0.0.1:9898
//! cargo run -p brisk-examples --example monitor_metrics -- 0.0.0.0:9100
//! curl -s 127.0.0.1:9898/metrics | grep analyze
//! curl -s 127.0.0.1:9898/summary
//! ```
//!
//! A background task "analyzes" a text every few milliseconds (a fake workload
//! of 1–20 ms, failing one call in 25), timed with `Operation::track`; its
//! percentiles are served since start and over the last 1 min, 5 min and 1 h
//! (`brisk_operation_duration_seconds_percentiles{window="1m",…}`); a
//! `metrics::counter!` from the facade lands in the same registry, and an
//! alert rule logs when the p95 goes over 15 ms.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use brisk_monitor::{
    AlertEngine, AlertRule, AlertRules, LogNotifier, Monitor, Op, PROMETHEUS_CONTENT_TYPE, Signal,
    SummaryOptions,
};

/// The fake operation: sleeps `ms` milliseconds, fails when `ms` is a multiple of 25.
async fn analyze(ms: u64) -> Result<usize, String> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    if ms.is_multiple_of(25) {
        Err(format!("model timeout after {ms} ms"))
    } else {
        Ok(ms as usize * 3)
    }
}

/// The HTTP routes over `monitor`.
fn routes(monitor: Monitor) -> Router {
    let m2 = monitor.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = monitor.clone();
                async move { ([(CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], m.render_prometheus()) }
            }),
        )
        .route(
            "/summary",
            get(move || {
                let m = m2.clone();
                async move { axum::Json(m.summary(&SummaryOptions::default())) }
            }),
        )
}

/// Runs the workload forever.
async fn workload(monitor: Monitor) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let op = monitor.operation("analyze")?;
    let recorder = monitor.recorder();
    let mut i = 0u64;
    loop {
        i += 1;
        let ms = 1 + (i * 7919) % 20 + if i.is_multiple_of(5) { 5 } else { 0 };
        let _ = op.track(analyze(ms)).await;
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("example_texts_total").increment(1);
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:9898")
        .parse()?;
    let monitor = Monitor::new();
    monitor.spawn_maintenance();
    let rule = AlertRule::threshold(
        "analyze_slow",
        Signal::operation_quantile("analyze", 0.95, Duration::from_secs(60)),
        Op::Gt,
        0.015,
    )
    .pending(Duration::from_secs(10))
    .summary("analyze p95 over 15 ms");
    let engine = Arc::new(
        AlertEngine::builder(&monitor)
            .rules(AlertRules::new([rule])?)
            .notifier(LogNotifier)
            .build()?,
    );
    engine.spawn(Duration::from_secs(5));
    tokio::spawn(workload(monitor.clone()));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("serving http://{}/metrics and /summary", listener.local_addr()?);
    axum::serve(listener, routes(monitor)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A plain HTTP/1.1 GET over a blocking socket (kept off the async workers).
    async fn get(addr: SocketAddr, path: &str) -> String {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_the_timed_operation() {
        let monitor = Monitor::new();
        let op = monitor.operation("analyze").unwrap();
        assert_eq!(op.track(analyze(2)).await, Ok(6));
        assert!(op.track(analyze(25)).await.is_err());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, routes(monitor)).await.unwrap() });

        let metrics = get(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("text/plain; version=0.0.4"));
        assert!(
            metrics.contains("brisk_operation_duration_seconds_count{operation=\"analyze\"} 2\n"),
            "{metrics}"
        );
        assert!(metrics.contains("brisk_operation_errors_total{operation=\"analyze\"} 1\n"));
        // Percentiles since start and over the last minute (5 minutes, hour).
        assert!(metrics.contains(
            "brisk_operation_duration_seconds_percentiles{operation=\"analyze\",quantile=\"0.5\"}"
        ));
        assert!(
            metrics.contains(
                "brisk_operation_duration_seconds_percentiles_count{operation=\"analyze\",window=\"1m\"} 2\n"
            ),
            "{metrics}"
        );
        let summary = get(addr, "/summary").await;
        let body = summary.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(json["operations"][0]["name"], "analyze");
        assert_eq!(json["operations"][0]["error_rate"], 0.5);
    }
}
