//! Two server processes' worth of servers sharing Redis: WebSocket events
//! fan out between them; Redis unreachable degrades, it does not fail.

use std::time::Duration;

use brisk_server::Secret;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{TestServer, settings};

/// The Redis check of `/ready`.
async fn redis_check(server: &TestServer) -> Value {
    let ready: Value = server.get("/ready").await.json().await.unwrap();
    ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "redis")
        .unwrap()
        .clone()
}

async fn wait_attached(server: &TestServer) {
    for _ in 0..100 {
        if redis_check(server).await["status"] == "healthy" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the Redis fan-out did not attach: {}", redis_check(server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_raised_on_one_server_reaches_a_client_of_another() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let with_redis = || {
        let mut s = settings();
        s.redis_url = Some(Secret::from(kv.url()));
        s.redis_prefix = kv.prefix().to_owned();
        s
    };
    let a = TestServer::start(with_redis()).await;
    let b = TestServer::start(with_redis()).await;
    wait_attached(&a).await;
    wait_attached(&b).await;

    let mut ws = b.subscribe("alerts").await;

    let r = a
        .post_json(
            "/api/posts",
            &json!({"id": "on-a", "text": "Initech breach confirmed by analysts"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let msg = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            if v["type"] == "message" {
                return v;
            }
        }
    })
    .await
    .expect("the alert raised on server A reaches a client of server B");
    assert_eq!(event["data"]["post_id"], "on-a");
    assert_eq!(event["data"]["entity"], "initech");
}

#[tokio::test]
async fn unreachable_redis_degrades_readiness_and_service_goes_on() {
    let mut s = settings();
    // Port 1 on loopback: nothing listens there.
    s.redis_url = Some(Secret::from("redis://127.0.0.1:1/"));
    let server = TestServer::start(s).await;
    let ready = server.get("/ready").await;
    assert_eq!(ready.status(), 200, "degraded, still ready");
    let check = redis_check(&server).await;
    assert_eq!(check["status"], "degraded", "{check}");
    assert!(
        check["detail"].as_str().unwrap().starts_with("unreachable"),
        "{check}"
    );
    let r = server
        .post_json("/api/posts", &json!({"text": "$ACME earnings without Redis"}))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["alerts"], 1);
}

/// Redis stopped mid-run: service goes on with local delivery and `/ready`
/// degraded; restarted: readiness and cross-server delivery come back by
/// themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_and_back() {
    let Some(mut redis) = brisk_testkit::redis_server() else {
        return;
    };
    let with_redis = || {
        let mut s = settings();
        s.redis_url = Some(Secret::from(redis.url().as_str()));
        s
    };
    let a = TestServer::start(with_redis()).await;
    let b = TestServer::start(with_redis()).await;
    wait_attached(&a).await;
    wait_attached(&b).await;
    let ws_url = format!("ws://{}/ws", b.base.trim_start_matches("http://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    ws.send(Message::text(
        json!({"type": "subscribe", "topic": "posts"}).to_string(),
    ))
    .await
    .unwrap();

    tokio::task::block_in_place(|| redis.stop()).unwrap();
    for server in [&a, &b] {
        let mut noticed = false;
        for _ in 0..200 {
            // Degraded, and the fan-out's subscriber has noticed.
            if redis_check(server).await["detail"]
                .as_str()
                .is_some_and(|d| d.contains("reconnecting"))
            {
                noticed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(noticed, "/ready says degraded while Redis is down");
    }
    let r = a
        .post_json(
            "/api/posts",
            &json!({"id": "during", "text": "while Redis is down"}),
        )
        .await;
    assert_eq!(r.status(), 201, "ingest goes on without Redis");

    tokio::task::block_in_place(|| redis.start_again()).unwrap();
    wait_attached(&a).await;
    wait_attached(&b).await;
    // The fan-out's subscriber reconnects with backoff; publish until B's
    // client sees a post from A.
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        for i in 0.. {
            let r = a
                .post_json(
                    "/api/posts",
                    &json!({"id": format!("after-{i}"), "text": "Redis is back"}),
                )
                .await;
            assert_eq!(r.status(), 201);
            let got = tokio::time::timeout(Duration::from_millis(300), async {
                loop {
                    let msg = ws.next().await.unwrap().unwrap();
                    let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
                    if v["type"] == "message"
                        && v["data"]["posts"][0]["id"]
                            .as_str()
                            .is_some_and(|id| id.starts_with("after-"))
                    {
                        return v;
                    }
                }
            })
            .await;
            if let Ok(v) = got {
                return v;
            }
        }
        unreachable!()
    })
    .await;
    let seen = seen.expect("cross-server delivery resumes after Redis restarts");
    assert_eq!(seen["topic"], "posts");
}
