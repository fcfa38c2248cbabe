//! The API: ingest, validation, pagination, alerts, analysis, cache, docs.

use std::collections::HashSet;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{TestServer, error_body};

#[tokio::test]
async fn validation_errors_name_the_field() {
    let s = TestServer::default().await;

    let r = s.post_json("/api/posts", &json!({"author": "@a"})).await;
    let body = error_body(r, 422).await;
    assert_eq!(body["error"], "validation_failed");
    assert!(
        body["message"].as_str().unwrap().starts_with("post.text"),
        "{body}"
    );

    let r = s
        .post_json("/api/posts", &json!([{"text": "fine"}, {"text": "   "}]))
        .await;
    let body = error_body(r, 422).await;
    assert!(
        body["message"].as_str().unwrap().starts_with("posts[1].text"),
        "{body}"
    );

    let r = s
        .post_json("/api/posts", &json!({"text": "x", "created_at": "yesterday"}))
        .await;
    let body = error_body(r, 422).await;
    assert!(
        body["message"].as_str().unwrap().starts_with("post.created_at"),
        "{body}"
    );

    let r = s
        .post_json("/api/posts", &json!({"text": "x", "colour": "red"}))
        .await;
    let body = error_body(r, 422).await;
    assert!(
        body["message"].as_str().unwrap().starts_with("post.colour"),
        "{body}"
    );

    let long = "x".repeat(10_001);
    let r = s.post_json("/api/posts", &json!({"text": long})).await;
    let body = error_body(r, 422).await;
    assert!(body["message"].as_str().unwrap().contains("10000"), "{body}");

    let too_many: Vec<Value> = (0..1001).map(|i| json!({"text": format!("t{i}")})).collect();
    let r = s.post_json("/api/posts", &Value::Array(too_many)).await;
    let body = error_body(r, 422).await;
    assert!(body["message"].as_str().unwrap().contains("1000"), "{body}");

    let r = s
        .client
        .post(s.url("/api/posts"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let body = error_body(r, 400).await;
    assert_eq!(body["error"], "bad_json");

    let r = s.post_json("/api/analyze", &json!({"texts": [1]})).await;
    let body = error_body(r, 422).await;
    assert!(
        body["message"].as_str().unwrap().starts_with("texts[0]"),
        "{body}"
    );

    let r = s.get("/api/posts?limit=0").await;
    let body = error_body(r, 422).await;
    assert!(body["message"].as_str().unwrap().starts_with("limit"), "{body}");

    let r = s.get("/api/posts?cursor=garbage").await;
    let body = error_body(r, 422).await;
    assert!(body["message"].as_str().unwrap().starts_with("cursor"), "{body}");

    let r = s.get("/api/alerts?min_confidence=2").await;
    error_body(r, 422).await;

    let r = s.get("/api/performance/report?hours=0").await;
    error_body(r, 422).await;

    let r = s.get("/no/such/route").await;
    let body = error_body(r, 404).await;
    assert_eq!(body["error"], "not_found");

    let r = s.client.delete(s.url("/api/posts")).send().await.unwrap();
    let body = error_body(r, 405).await;
    assert_eq!(body["error"], "method_not_allowed");
}

#[tokio::test]
async fn pagination_walks_every_post_once_newest_first() {
    let s = TestServer::default().await;
    let base = 1_800_000_000_000_i64;
    // 25 posts by one author, 3 of them at the same millisecond (ties by id).
    let posts: Vec<Value> = (0..25)
        .map(|i| {
            let at = if i < 3 { base } else { base + i64::from(i) * 1000 };
            json!({"id": format!("p{i:02}"), "text": format!("post number {i}"), "author": "@pager", "created_at": at})
        })
        .collect();
    let r = s.post_json("/api/posts", &Value::Array(posts)).await;
    assert_eq!(r.status(), 201);
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack["accepted"], 25);
    // Noise from another author.
    let r = s
        .post_json("/api/posts", &json!({"text": "someone else", "author": "@other"}))
        .await;
    assert_eq!(r.status(), 201);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api/posts?author=%40pager&limit=10".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = s.get(&path).await.json().await.unwrap();
        pages += 1;
        for p in page["posts"].as_array().unwrap() {
            seen.push((
                p["created_at"].as_str().unwrap().to_owned(),
                p["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    assert_eq!(seen.iter().map(|(_, id)| id).collect::<HashSet<_>>().len(), 25);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, ties by id descending");

    // Time filters.
    let since = base + 20_000;
    let page: Value = s
        .get(&format!("/api/posts?author=%40pager&since={since}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["posts"].as_array().unwrap().len(), 5); // 20..=24
}

#[tokio::test]
async fn a_relevant_post_raises_an_alert_row_and_an_event() {
    let s = TestServer::default().await;
    let mut ws = s.subscribe("alerts").await;

    let r = s
        .post_json(
            "/api/posts",
            &json!([
                {"id": "hit", "text": "$ACME earnings beat, analysts cheer", "author": "@desk"},
                {"id": "miss", "text": "I love my cat", "author": "@desk"},
                {"id": "vetoed", "text": "Acme earnings giveaway!!!", "author": "@spam"}
            ]),
        )
        .await;
    assert_eq!(r.status(), 201);
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack["alerts"], 1, "{ack}");

    let page: Value = s.get("/api/alerts?entity=acme").await.json().await.unwrap();
    let alerts = page["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{page}");
    assert_eq!(alerts[0]["post_id"], "hit");
    assert!(alerts[0]["confidence"].as_f64().unwrap() >= 0.5);
    assert!(
        alerts[0]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["rule"] == "keyword")
    );

    let none: Value = s.get("/api/alerts?entity=globex").await.json().await.unwrap();
    assert!(none["alerts"].as_array().unwrap().is_empty());
    let strict: Value = s.get("/api/alerts?min_confidence=1").await.json().await.unwrap();
    assert!(strict["alerts"].as_array().unwrap().is_empty());

    let event = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let msg = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            if v["type"] == "message" {
                return v;
            }
        }
    })
    .await
    .expect("an alert event");
    assert_eq!(event["topic"], "alerts");
    assert_eq!(event["data"]["post_id"], "hit");
    assert_eq!(event["data"]["entity"], "acme");
}

#[tokio::test]
async fn analysis_is_cached_by_content_hash() {
    let s = TestServer::default().await;
    let text = "Globex announces merger talks on the Nasdaq";
    let first: Value = s
        .post_json("/api/analyze", &json!({"text": text}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["cached"], false);
    assert_eq!(first["relevant"], true);
    assert!(first["score"].as_f64().unwrap() >= 50.0);
    assert_eq!(first["relevance"]["entities"][0]["entity"], "globex");
    let second: Value = s
        .post_json("/api/analyze", &json!({"text": text}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["cached"], true);
    assert_eq!(first["score"], second["score"]);

    let batch: Value = s
        .post_json("/api/analyze", &json!({"texts": [text, "nothing here"]}))
        .await
        .json()
        .await
        .unwrap();
    let results = batch["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["cached"], true);
    assert_eq!(results[1]["relevant"], false);

    let stats: Value = s.get("/api/cache/stats").await.json().await.unwrap();
    let ns = &stats["namespaces"][0];
    assert_eq!(ns["namespace"], "analysis");
    assert_eq!(ns["hits"], 2);
    assert_eq!(ns["misses"], 2);
    assert!(ns["cost_saved_us"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let s = TestServer::default().await;
    let _ = s.post_json("/api/analyze", &json!({"text": "warm up"})).await;

    let doc: Value = s.get("/api/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/posts",
        "/api/analyze",
        "/api/alerts",
        "/api/generate",
        "/api/dictionary",
        "/api/performance/summary",
        "/api/performance/slow-queries",
        "/api/performance/report",
        "/api/cache/stats",
        "/api/cache/invalidate",
        "/api/openapi.json",
        "/health",
        "/ready",
        "/metrics",
        "/ws",
        "/",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
        let r = s.get(path).await;
        assert_ne!(r.status(), 404, "{path} is documented but not served");
    }

    let ready = s.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    let checks = ready["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "database" && c["status"] == "healthy"),
        "{ready}"
    );

    let metrics = s.get("/metrics").await;
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("brisk_operation_duration_seconds_count{operation=\"POST /api/analyze\"} 1"),
        "{text}"
    );
    assert!(text.contains("brisk_cache_"), "cache stats are collected");

    let summary: Value = s.get("/api/performance/summary").await.json().await.unwrap();
    assert!(
        summary["summary"]["operations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "http")
    );
    assert!(
        summary["components"]["system"]["process_rss_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );

    let report: Value = s
        .get("/api/performance/report?hours=1")
        .await
        .json()
        .await
        .unwrap();
    assert!(report["health_score"].is_number(), "{report}");
    let slow: Value = s.get("/api/performance/slow-queries").await.json().await.unwrap();
    assert!(slow["statements"].is_array());

    let page = s.get("/").await;
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/assets/dashboard.js"));
    assert!(!html.contains("http://") && !html.contains("https://"), "no CDN");
}

#[tokio::test]
async fn generate_goes_through_the_local_model_and_the_generated_topic() {
    let mut settings = crate::settings();
    settings.seed_demo = true;
    let s = TestServer::start(settings).await;
    let mut ws = s.subscribe("generated").await;

    let r = s
        .post_json(
            "/api/generate",
            &json!({"topic": "Acme", "n": 3, "seed": 7, "max_chars": 200}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["backend"], "local");
    let posts = out["posts"].as_array().unwrap();
    assert_eq!(posts.len(), 3, "{out}");
    for p in posts {
        let text = p["text"].as_str().unwrap();
        assert!(text.chars().count() <= 200);
        assert!(text.to_lowercase().contains("acme"), "{text}");
        let c = p["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c));
    }
    // Seeded: the same request gives the same posts.
    let again: Value = s
        .post_json(
            "/api/generate",
            &json!({"topic": "Acme", "n": 3, "seed": 7, "max_chars": 200}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["posts"], out["posts"]);
    assert_eq!(out["cached"], false);
    assert_eq!(
        again["cached"], true,
        "a seeded request is cached for the model version"
    );
    let stats: Value = s.get("/api/cache/stats").await.json().await.unwrap();
    let generation = &stats["namespaces"][1];
    assert_eq!(generation["namespace"], "generation");
    assert_eq!(generation["hits"], 1);

    let event = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let msg = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            if v["type"] == "message" {
                return v;
            }
        }
    })
    .await
    .expect("a generated event");
    assert_eq!(event["topic"], "generated");
    assert_eq!(event["data"]["posts"], out["posts"]);

    for (body, field) in [
        (json!({"n": 0}), "n"),
        (json!({"n": 11}), "n"),
        (json!({"max_chars": 5}), "max_chars"),
        (json!({"hook": "shout"}), "hook"),
        (json!({"mood": "happy"}), "mood"),
    ] {
        let r = s.post_json("/api/generate", &body).await;
        let e = error_body(r, 422).await;
        assert!(e["message"].as_str().unwrap().starts_with(field), "{e}");
    }

    let summary: Value = s.get("/api/performance/summary").await.json().await.unwrap();
    let pipeline = &summary["components"]["pipeline"];
    assert_eq!(pipeline["name"], "generate");
    // The second (cached) request never reached the pipeline.
    assert_eq!(pipeline["completed"], 1, "{pipeline}");
    assert!(summary["components"]["generator"]["posts"].as_u64().unwrap() >= 1000);
}

#[tokio::test]
async fn generate_without_a_corpus_is_503() {
    let s = TestServer::default().await;
    let r = s.post_json("/api/generate", &json!({})).await;
    let body = error_body(r, 503).await;
    assert_eq!(body["error"], "model_not_ready");
}

#[tokio::test]
async fn the_metrics_topic_streams_component_snapshots() {
    let s = TestServer::default().await;
    let _ = s
        .post_json("/api/analyze", &json!({"text": "$ACME earnings"}))
        .await;
    let ws_url = format!("ws://{}/ws", s.base.trim_start_matches("http://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    ws.send(Message::text(
        json!({"type": "subscribe", "topic": "metrics"}).to_string(),
    ))
    .await
    .unwrap();
    let snapshot = tokio::time::timeout(std::time::Duration::from_secs(6), async {
        loop {
            let msg = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            if v["type"] == "message" && v["topic"] == "metrics" {
                return v["data"].clone();
            }
        }
    })
    .await
    .expect("a metrics snapshot within two publish intervals");
    assert!(
        snapshot["http"]["requests_total"].as_u64().unwrap() >= 1,
        "{snapshot}"
    );
    assert!(snapshot["http"]["rate_per_sec"].is_number());
    assert_eq!(snapshot["websocket"]["connections"], 1);
    assert_eq!(snapshot["cache"]["namespaces"][0]["misses"], 1);
    assert!(snapshot["system"]["process_rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(snapshot["pipeline"]["name"], "generate");
}
