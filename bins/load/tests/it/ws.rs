use std::time::Duration;

use brisk_load::{Target, WsRun};
use brisk_ws_hub::Hub;

async fn hub() -> (Hub, std::net::SocketAddr) {
    let hub = Hub::builder().client_publish(true).build().unwrap();
    let addr = crate::server::serve(brisk_ws_hub::router(hub.clone(), "/ws")).await;
    (hub, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_counts_every_delivery_once() {
    let (_hub, addr) = hub().await;
    let target = Target::parse(&format!("ws://{addr}/ws"), false).unwrap();
    // 5 connections per source address: 127.0.0.2 .. 127.0.0.5.
    let run = WsRun::new(target).connections(20).per_source(5).stats_path(None);
    let report = run
        .broadcast(5, Duration::from_millis(100), Duration::from_millis(500))
        .await
        .unwrap();
    let ws = report.ws.as_ref().unwrap();
    assert_eq!(
        (ws.opened, ws.failed, ws.messages),
        (20, 0, 5),
        "{}",
        report.to_table()
    );
    assert_eq!((ws.delivered, ws.lost, ws.duplicated), (100, 0, 0));
    assert_eq!(report.windows.len(), 5);
    assert!(report.summary.latency_ms.p50 > 0.0);
    assert!(report.verdict.pass, "{}", report.to_table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_opens_connections_and_reads_rss_growth_from_stats() {
    // A stand-in for the ws_hub example's /stats: 8,000 bytes per connection.
    let hub = Hub::builder().build().unwrap();
    let h = hub.clone();
    let app =
        brisk_ws_hub::router(hub.clone(), "/ws").merge(axum::Router::new().route(
            "/stats",
            axum::routing::get(move || {
                let n = h.stats().connections;
                async move {
                    axum::Json(serde_json::json!({"rss_bytes": 1_000_000 + n * 8_000, "connections": n}))
                }
            }),
        ));
    let addr = crate::server::serve(app).await;
    let target = Target::parse(&format!("ws://{addr}/ws"), false).unwrap();
    let report = WsRun::new(target)
        .connections(30)
        .per_source(10)
        .settle(Duration::from_millis(300))
        .idle()
        .await
        .unwrap();
    let ws = report.ws.as_ref().unwrap();
    assert_eq!((ws.opened, ws.failed), (30, 0), "{}", report.to_table());
    assert_eq!(ws.rss_growth_per_connection_bytes, Some(8_000.0));
    assert!(report.verdict.pass);
    assert!(report.to_table().contains("RSS growth per connection"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_are_refused_up_front() {
    let target = Target::parse("ws://127.0.0.1:9/ws", false).unwrap();
    let err = WsRun::new(target).connections(20_000).idle().await.unwrap_err();
    assert!(err.to_string().contains("--connections"), "{err}");
}
