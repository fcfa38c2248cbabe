//! brisk-ws-hub benchmarks, beside the baseline a user would write, in the
//! same run.
//!
//! - `hub_fanout`: in-process fan-out to 10,000 subscribers of one topic,
//!   no sockets. Each iteration publishes `m` messages (1 or 16) and then
//!   every subscriber takes what it was sent, as a connection's writer
//!   would. Throughput is in deliveries (`m` × 10,000).
//!   - `brisk`: `Hub::publish` (the frame encoded once, its `Bytes` queued
//!     for each subscriber), then `Connection::try_next_batch` on each.
//!   - `tokio_broadcast`: a `tokio::sync::broadcast` channel per topic
//!     (capacity 256, like the hub's default queue) carrying the encoded
//!     `Bytes`, encoded once per message with `serde_json`, then `try_recv`
//!     on each of the 10,000 receivers.
//!
//! - `hub_ws_broadcast`: the same over real WebSocket connections on 127.0.0.1: 1,000
//!   tokio-tungstenite clients subscribed to one topic; one iteration
//!   publishes one message and ends when every client has read it
//!   (throughput in deliveries). Server and clients share one 2-worker
//!   runtime in this process.
//!   - `brisk`: the hub served by `brisk_ws_hub::router`, `Hub::publish`.
//!   - `axum_broadcast`: what a user would write: an axum WebSocket handler
//!     per connection forwarding a `tokio::sync::broadcast` receiver to its
//!     socket (`send` per message, axum's default buffers).
//!
//! Run: `cargo bench -p brisk-benches --bench ws_hub -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use brisk_ws_hub::{Connection, Delivery, Hub};
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Semaphore, broadcast};
use tokio_tungstenite::tungstenite::Message;

const SUBSCRIBERS: usize = 10_000;

fn payload(i: u64) -> serde_json::Value {
    json!({"id": i, "kind": "alert", "text": "Big news for $ABC today", "score": 0.93})
}

fn hub_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub_fanout");
    group.sample_size(20);
    for per_round in [1u64, 16] {
        group.throughput(Throughput::Elements(per_round * SUBSCRIBERS as u64));

        let hub = Hub::builder()
            .max_connections(SUBSCRIBERS + 1)
            .build()
            .expect("config");
        let mut conns: Vec<Connection> = (0..SUBSCRIBERS)
            .map(|_| {
                let c = hub.connect(None).expect("connect");
                c.subscribe("alerts").expect("subscribe");
                c
            })
            .collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("brisk", per_round), |b| {
            b.iter(|| {
                for _ in 0..per_round {
                    i += 1;
                    hub.publish("alerts", &payload(i)).expect("publish");
                }
                let mut delivered = 0;
                for c in &mut conns {
                    while let Some(Delivery::Frames(f)) = c.try_next_batch() {
                        delivered += f.len();
                    }
                }
                assert_eq!(delivered as u64, per_round * SUBSCRIBERS as u64);
                black_box(delivered)
            });
        });
        drop(conns);

        let (tx, _) = broadcast::channel::<Bytes>(256);
        let mut rxs: Vec<broadcast::Receiver<Bytes>> = (0..SUBSCRIBERS).map(|_| tx.subscribe()).collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("tokio_broadcast", per_round), |b| {
            b.iter(|| {
                for _ in 0..per_round {
                    i += 1;
                    let frame =
                        serde_json::to_vec(&json!({"topic": "alerts", "offset": i, "data": payload(i)}))
                            .expect("encode");
                    tx.send(Bytes::from(frame)).expect("send");
                }
                let mut delivered = 0;
                for rx in &mut rxs {
                    while let Ok(f) = rx.try_recv() {
                        black_box(&f);
                        delivered += 1;
                    }
                }
                assert_eq!(delivered as u64, per_round * SUBSCRIBERS as u64);
                black_box(delivered)
            });
        });
    }
    group.finish();
}

const WS_CLIENTS: usize = 1_000;

/// Opens `n` clients to `url`; each adds a permit to `received` per message
/// frame it reads. With `subscribe`, each first subscribes (brisk protocol)
/// and waits for the acknowledgement.
async fn clients(url: &str, n: usize, subscribe: bool, received: &Arc<Semaphore>) {
    for _ in 0..n {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
        if subscribe {
            ws.send(Message::Text(
                r#"{"v":1,"type":"subscribe","topic":"alerts"}"#.into(),
            ))
            .await
            .expect("send");
            while let Some(Ok(m)) = ws.next().await {
                if matches!(&m, Message::Text(t) if t.contains("\"subscribed\"")) {
                    break;
                }
            }
        }
        let received = received.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if matches!(m, Message::Text(_)) {
                    received.add_permits(1);
                }
            }
        });
    }
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn peer_handler(State(tx): State<broadcast::Sender<Bytes>>, ws: WebSocketUpgrade) -> Response {
    let mut rx = tx.subscribe();
    ws.on_upgrade(move |mut socket: WebSocket| async move {
        while let Ok(frame) = rx.recv().await {
            let Ok(text) = axum::extract::ws::Utf8Bytes::try_from(frame) else {
                break;
            };
            if socket.send(AxMessage::Text(text)).await.is_err() {
                break;
            }
        }
    })
}

fn hub_ws_broadcast(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("hub_ws_broadcast");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(WS_CLIENTS as u64));

    let received = Arc::new(Semaphore::new(0));
    let hub = Hub::builder()
        .max_connections(WS_CLIENTS + 1)
        .build()
        .expect("config");
    rt.block_on(async {
        let addr = serve(brisk_ws_hub::router(hub.clone(), "/ws")).await;
        clients(&format!("ws://{addr}/ws"), WS_CLIENTS, true, &received).await;
    });
    let mut i = 0;
    group.bench_function(BenchmarkId::new("brisk", WS_CLIENTS), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    i += 1;
                    hub.publish("alerts", &payload(i)).expect("publish");
                    received
                        .acquire_many(WS_CLIENTS as u32)
                        .await
                        .expect("open")
                        .forget();
                }
                start.elapsed()
            })
        });
    });
    hub.shutdown();

    let received = Arc::new(Semaphore::new(0));
    let (tx, _) = broadcast::channel::<Bytes>(256);
    rt.block_on(async {
        let app = axum::Router::new()
            .route("/ws", axum::routing::get(peer_handler))
            .with_state(tx.clone());
        let addr = serve(app).await;
        clients(&format!("ws://{addr}/ws"), WS_CLIENTS, false, &received).await;
        while tx.receiver_count() < WS_CLIENTS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let mut i = 0;
    group.bench_function(BenchmarkId::new("axum_broadcast", WS_CLIENTS), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    i += 1;
                    let frame =
                        serde_json::to_vec(&json!({"topic": "alerts", "offset": i, "data": payload(i)}))
                            .expect("encode");
                    tx.send(Bytes::from(frame)).expect("send");
                    received
                        .acquire_many(WS_CLIENTS as u32)
                        .await
                        .expect("open")
                        .forget();
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, hub_fanout, hub_ws_broadcast);
criterion_main!(benches);
