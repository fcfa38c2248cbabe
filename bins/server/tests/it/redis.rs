//! Two server processes' worth of servers sharing Redis: WebSocket events
//! fan out between them; Redis unreachable degrades, it does not fail.

use std::time::Duration;

use brisk_server::{Secret, Settings};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{TestServer, settings};

/// Test settings on the shared testkit Redis, under the test's own prefix.
fn on_shared_redis(kv: &brisk_testkit::TestRedis) -> Settings {
    let mut s = settings();
    s.redis_url = Some(Secret::from(kv.url()));
    s.redis_prefix = kv.prefix().to_owned();
    s
}

/// Test settings on a Redis server of the test's own (one it may stop).
fn on_own_redis(redis: &brisk_testkit::RedisServer) -> Settings {
    let mut s = settings();
    s.redis_url = Some(Secret::from(redis.url().as_str()));
    s
}

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
    let with_redis = || on_shared_redis(&kv);
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
    let with_redis = || on_own_redis(&redis);
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

/// The L2 counters in `/api/cache/stats`.
async fn l2_stats(server: &TestServer) -> Value {
    let stats: Value = server.get("/api/cache/stats").await.json().await.unwrap();
    stats["l2"].clone()
}

async fn analyze(server: &TestServer, text: &str) -> Value {
    let r = server.post_json("/api/analyze", &json!({ "text": text })).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// An analysis computed on one server is a Redis (L2) hit on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysis_computed_on_one_server_is_an_l2_hit_on_another() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let with_redis = || on_shared_redis(&kv);
    let a = TestServer::start(with_redis()).await;
    let b = TestServer::start(with_redis()).await;

    let text = "Initech breach confirmed, $ACME shares fall";
    let on_a = analyze(&a, text).await;
    assert_eq!(on_a["cached"], false, "{on_a}");
    let on_b = analyze(&b, text).await;
    assert_eq!(on_b["cached"], true, "{on_b}");
    assert_eq!(on_b["cache_tier"], "l2", "{on_b}");
    assert_eq!(on_b["score"], on_a["score"]);
    assert_eq!(on_b["matches"], on_a["matches"]);
    assert!(l2_stats(&b).await["hits"].as_u64().unwrap() >= 1);
    // Now in B's own cache.
    assert_eq!(analyze(&b, text).await["cache_tier"], "l1");

    // A batch: one text known to Redis, one new.
    let r = b
        .post_json("/api/analyze", &json!({"texts": [text, "nothing to see here"]}))
        .await;
    let batch: Value = r.json().await.unwrap();
    assert_eq!(batch["results"][0]["cached"], true, "{batch}");
    assert_eq!(batch["results"][1]["cached"], false, "{batch}");
    assert_eq!(analyze(&a, "nothing to see here").await["cache_tier"], "l2");
}

/// Redis stopped: analyses are computed and served from each process's own
/// cache, `/ready` is degraded; Redis back: the L2 is shared again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_serves_without_redis_and_shares_again_when_it_is_back() {
    let Some(mut redis) = brisk_testkit::redis_server() else {
        return;
    };
    let with_redis = || on_own_redis(&redis);
    let a = TestServer::start(with_redis()).await;
    let b = TestServer::start(with_redis()).await;
    assert_eq!(analyze(&a, "before the outage").await["cached"], false);

    tokio::task::block_in_place(|| redis.stop()).unwrap();
    for i in 0..5 {
        let text = format!("during the outage {i}");
        assert_eq!(analyze(&a, &text).await["cached"], false);
        assert_eq!(analyze(&a, &text).await["cache_tier"], "l1");
    }
    assert_eq!(redis_check(&a).await["status"], "degraded");

    tokio::task::block_in_place(|| redis.start_again()).unwrap();
    // The L2's breaker lets a call through after its back-off: keep
    // computing on A until one of A's analyses is an L2 hit on B.
    let shared = tokio::time::timeout(Duration::from_secs(30), async {
        for i in 0.. {
            let text = format!("after the outage {i}");
            analyze(&a, &text).await;
            if analyze(&b, &text).await["cache_tier"] == "l2" {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        unreachable!()
    })
    .await;
    assert!(shared.is_ok(), "the L2 is shared again after Redis restarts");
}

/// One client's quota is spent across two servers sharing Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_quota_is_shared_between_servers() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let with_redis = || {
        let mut s = on_shared_redis(&kv);
        s.client_rate_limit_per_minute = 5;
        s
    };
    let a = TestServer::start(with_redis()).await;
    let b = TestServer::start(with_redis()).await;
    let call = |server: &TestServer, key: &'static str| {
        server
            .client
            .post(server.url("/api/analyze"))
            .header("x-api-key", key)
            .json(&json!({"text": "quota"}))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(call(&a, "client-1").await.unwrap().status(), 200);
    }
    let refused = call(&b, "client-1").await.unwrap();
    assert_eq!(refused.status(), 429, "the quota spent on A holds on B");
    assert!(refused.headers().get("retry-after").is_some());
    assert!(refused.headers().get("ratelimit-policy").is_some());
    let body = crate::error_body(refused, 429).await;
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["class"], "analyze");
    assert_eq!(
        call(&b, "client-2").await.unwrap().status(),
        200,
        "another client is not limited"
    );
    let summary: Value = b.get("/api/performance/summary").await.json().await.unwrap();
    let classes = summary["components"]["rate_limiter"]["classes"]
        .as_array()
        .unwrap()
        .clone();
    let analyze_class = classes.iter().find(|c| c["class"] == "analyze").unwrap();
    assert_eq!(analyze_class["limited_total"], 1, "{analyze_class}");
    assert_eq!(
        b.get("/api/cache/stats").await.status(),
        200,
        "other classes have their own quota"
    );
}

/// Redis down: the local limits decide (requests are answered, a client
/// past its local quota gets 429).
#[tokio::test]
async fn client_limits_fall_back_to_local_limits_without_redis() {
    let mut s = settings();
    s.redis_url = Some(Secret::from("redis://127.0.0.1:1/"));
    s.client_rate_limit_per_minute = 3;
    let server = TestServer::start(s).await;
    for _ in 0..3 {
        let r = server.post_json("/api/analyze", &json!({"text": "local"})).await;
        assert_eq!(r.status(), 200);
    }
    let r = server.post_json("/api/analyze", &json!({"text": "local"})).await;
    assert_eq!(r.status(), 429, "the local quota applies");
    let summary: Value = server.get("/api/performance/summary").await.json().await.unwrap();
    let limiter = &summary["components"]["rate_limiter"];
    assert_eq!(limiter["shared"], true, "{limiter}");
    assert!(limiter["local_fallbacks"].as_u64().unwrap() >= 4, "{limiter}");
}
