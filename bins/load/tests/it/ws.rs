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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_from_two_client_processes_over_two_hubs_joined_by_redis() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let mut hubs = Vec::new();
    let mut targets = Vec::new();
    for _ in 0..2 {
        let hub = Hub::builder().client_publish(true).build().unwrap();
        let fanout = brisk_ws_hub::RedisFanout::builder(kv.url())
            .prefix(kv.prefix())
            .attach(&hub)
            .await
            .unwrap();
        let addr = crate::server::serve(brisk_ws_hub::router(hub.clone(), "/ws")).await;
        targets.push(Target::parse(&format!("ws://{addr}/ws"), false).unwrap());
        hubs.push((hub, fanout));
    }
    // Both hubs listen on Redis before anything is published.
    for _ in 0..1_500 {
        if hubs.iter().all(|(_, f)| f.is_subscribed()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(hubs.iter().all(|(_, f)| f.is_subscribed()));
    let first = targets[0].clone();
    // 30 connections, 15 per child process, alternating between the hubs;
    // the publisher is on the first hub, so the second hub's 15 subscribers
    // receive only through Redis.
    let run = WsRun::new(first)
        .targets(targets)
        .client_processes(2)
        .client_exe(env!("CARGO_BIN_EXE_brisk-load"))
        .connections(30)
        .per_source(10)
        .stats_path(None);
    let report = run
        .broadcast(4, Duration::from_millis(100), Duration::from_millis(800))
        .await
        .unwrap();
    let ws = report.ws.as_ref().unwrap();
    assert_eq!(
        (ws.opened, ws.failed, ws.messages),
        (30, 0, 4),
        "{}",
        report.to_table()
    );
    assert_eq!(
        (ws.delivered, ws.lost, ws.duplicated),
        (120, 0, 0),
        "{}",
        report.to_table()
    );
    assert!(report.summary.latency_ms.p50 > 0.0);
    assert!(report.notes.iter().any(|n| n.contains("2 client processes")));
    // The second hub delivered its subscribers' share: 15 × 4 messages.
    assert!(hubs[1].0.stats().messages_out >= 60, "{:?}", hubs[1].0.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_processes_are_for_broadcast_and_bounded() {
    let target = Target::parse("ws://127.0.0.1:9/ws", false).unwrap();
    let err = WsRun::new(target.clone())
        .client_processes(2)
        .connections(100)
        .idle()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--client-processes"), "{err}");
    // 40,000 over 2 processes is 20,000 each: more than one process holds.
    let err = WsRun::new(target)
        .client_processes(2)
        .connections(40_000)
        .broadcast(1, Duration::from_secs(1), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--connections"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_over_several_topics_expects_each_message_on_its_topic_only() {
    let (hub, addr) = hub().await;
    let target = Target::parse(&format!("ws://{addr}/ws"), false).unwrap();
    // 30 connections on 3 topics (10 each), 7 messages: topic 0 gets
    // messages 0, 3, 6; topics 1 and 2 get two each.
    let run = WsRun::new(target)
        .connections(30)
        .per_source(10)
        .topics(3)
        .stats_path(None);
    let report = run
        .broadcast(7, Duration::from_millis(60), Duration::from_millis(500))
        .await
        .unwrap();
    let ws = report.ws.as_ref().unwrap();
    assert_eq!(
        (ws.delivered, ws.lost, ws.duplicated),
        (70, 0, 0),
        "{}",
        report.to_table()
    );
    assert_eq!(report.summary.planned, 70);
    // Every message went out once per subscriber of its topic, not to all 30.
    assert!((70..210).contains(&hub.stats().messages_out), "{:?}", hub.stats());
    assert_eq!(report.windows[0].errors, 0);
    assert!(report.notes.iter().any(|n| n.contains("3 topics")));
    assert!(report.verdict.pass, "{}", report.to_table());
}
