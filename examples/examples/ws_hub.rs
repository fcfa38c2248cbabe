//! A plain brisk-ws-hub server: the hub at `/ws` (clients may publish) and
//! its stats, with the process's resident memory, at `/stats`.
//!
//! ```text
//! cargo run --release -p brisk-examples --example ws_hub -- --listen 127.0.0.1:9001
//! cargo run --release -p brisk-examples --example ws_hub -- --listen 127.0.0.1:9002 --redis redis://127.0.0.1:6379
//! curl -s 127.0.0.1:9001/stats
//! ```
//!
//! Clients speak the JSON protocol of `docs/ws-hub.md`, for example
//! `{"v":1,"type":"subscribe","topic":"alerts"}` then
//! `{"v":1,"type":"publish","topic":"alerts","data":{"n":1}}`. With
//! `--redis`, several of these processes form one hub: a publish to any of
//! them reaches the subscribers of all.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use brisk_ws_hub::Hub;

/// Command-line options.
#[derive(Debug, Default)]
struct Args {
    listen: Option<SocketAddr>,
    redis: Option<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                let v = args.next().ok_or("--listen needs ADDR:PORT")?;
                out.listen = Some(v.parse().map_err(|e| format!("--listen {v}: {e}"))?);
            }
            "--redis" => out.redis = Some(args.next().ok_or("--redis needs a URL")?),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (use --listen ADDR:PORT [--redis URL])"
                ));
            }
        }
    }
    Ok(out)
}

/// Resident memory of this process in bytes (Linux `/proc/self/status`).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

async fn stats(State(hub): State<Hub>) -> axum::Json<serde_json::Value> {
    let s = hub.stats();
    axum::Json(serde_json::json!({
        "rss_bytes": rss_bytes(),
        "connections": s.connections,
        "subscriptions": s.subscriptions,
        "topics": s.topics,
        "queued": s.queued,
        "published": s.published,
        "messages_out": s.messages_out,
        "bytes_out": s.bytes_out,
        "drops": s.drops,
        "slow_disconnects": s.slow_disconnects,
        "heartbeat_timeouts": s.heartbeat_timeouts,
        "latency_p50_us": s.latency_p50.map(|d| d.as_micros() as u64),
        "latency_p99_us": s.latency_p99.map(|d| d.as_micros() as u64),
    }))
}

/// The hub (and its Redis fan-out, kept alive by the caller) and the app.
async fn app(
    redis: Option<&str>,
) -> Result<(Hub, Option<brisk_ws_hub::RedisFanout>, Router), Box<dyn std::error::Error>> {
    let hub = Hub::builder()
        .max_connections(200_000)
        .client_publish(true)
        .build()?;
    let fanout = match redis {
        Some(url) => Some(brisk_ws_hub::RedisFanout::builder(url).attach(&hub).await?),
        None => None,
    };
    let app = brisk_ws_hub::router(hub.clone(), "/ws")
        .merge(Router::new().route("/stats", get(stats)).with_state(hub.clone()));
    Ok((hub, fanout, app))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args(std::env::args().skip(1))?;
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9001)));
    let (_hub, _fanout, app) = app(args.redis.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "brisk-ws-hub on ws://{}/ws, stats at http://{}/stats",
        listener.local_addr()?,
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    async fn next_of(
        ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
        kind: &str,
    ) -> serde_json::Value {
        loop {
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["type"] == kind {
                    return v;
                }
            }
        }
    }

    #[test]
    fn parses_arguments() {
        let a = parse_args(
            ["--listen", "127.0.0.1:9", "--redis", "redis://x"]
                .map(String::from)
                .into_iter(),
        )
        .unwrap();
        assert_eq!(a.listen, Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(a.redis.as_deref(), Some("redis://x"));
        assert!(parse_args(["--port".to_string()].into_iter()).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_the_hub_and_its_stats() {
        let (_hub, _fanout, app) = app(None).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let (mut sub, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        let (mut publisher, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        sub.send(Message::Text(
            r#"{"v":1,"type":"subscribe","topic":"alerts"}"#.into(),
        ))
        .await
        .unwrap();
        next_of(&mut sub, "subscribed").await;
        publisher
            .send(Message::Text(
                r#"{"v":1,"type":"publish","topic":"alerts","data":{"n":7}}"#.into(),
            ))
            .await
            .unwrap();
        assert_eq!(next_of(&mut sub, "message").await["data"]["n"], 7);

        let body = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap();
        let json: serde_json::Value = serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(json["connections"], 2);
        assert!(json["rss_bytes"].as_u64().unwrap() > 0);
    }
}
