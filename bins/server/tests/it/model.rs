//! The local generator model: saved in the data directory and loaded at
//! the next start; capped in size so ingest stops growing it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{TestServer, settings};

/// The generator's part of the performance summary.
async fn generator(server: &TestServer) -> Value {
    let summary: Value = server.get("/api/performance/summary").await.json().await.unwrap();
    summary["components"]["generator"].clone()
}

/// Waits until the background training has seen `posts` posts in all
/// (learned plus skipped by the cap).
async fn wait_trained(server: &TestServer, posts: u64) -> Value {
    for _ in 0..200 {
        let g = generator(server).await;
        if g["posts"].as_u64().unwrap() + g["skipped_posts"].as_u64().unwrap() >= posts {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the model did not learn the posts: {}", generator(server).await);
}

fn batch(from: usize, n: usize) -> Value {
    let topics = ["release", "build", "deploy", "review", "cache", "queue"];
    Value::Array(
        (from..from + n)
            .map(|i| {
                json!({
                    "id": format!("m-{i}"),
                    "text": format!(
                        "Post {i}: the {} went well today and the {} is next on the list",
                        topics[i % topics.len()],
                        topics[(i / 2) % topics.len()]
                    ),
                })
            })
            .collect(),
    )
}

#[tokio::test]
async fn the_model_is_saved_at_shutdown_and_loaded_at_restart() {
    let s = settings();
    let server = TestServer::start(s.clone()).await;
    let r = server.post_json("/api/posts", &batch(0, 40)).await;
    assert_eq!(r.status(), 201);
    let before = wait_trained(&server, 40).await;
    assert_eq!(before["posts"], 40, "{before}");
    assert!(before["version"].as_u64().unwrap() >= 2, "{before}");
    let dir = server.stop().await;
    assert!(dir.join("model.bin").is_file(), "saved at shutdown");

    // The restart loads the file: the version (which training from the
    // database would reset to 1) and the size are the same.
    let server = TestServer::start(s).await;
    let after = generator(&server).await;
    for field in ["version", "posts", "tokens", "vocabulary"] {
        assert_eq!(after[field], before[field], "{field}: {before} then {after}");
    }
    let r = server
        .post_json("/api/generate", &json!({"topic": "release", "seed": 7}))
        .await;
    assert_eq!(r.status(), 200, "the loaded model generates");
    drop(server);
}

#[tokio::test]
async fn a_corrupted_model_file_is_replaced_by_training() {
    let s = settings();
    let server = TestServer::start(s.clone()).await;
    assert_eq!(server.post_json("/api/posts", &batch(0, 20)).await.status(), 201);
    wait_trained(&server, 20).await;
    let dir = server.stop().await;
    std::fs::write(dir.join("model.bin"), b"not a model").unwrap();

    let server = TestServer::start(s).await;
    let g = generator(&server).await;
    assert_eq!(g["posts"], 20, "trained again from the database: {g}");
    assert_eq!(g["version"], 1, "{g}");
    drop(server);
}

#[tokio::test]
async fn ingest_stops_growing_the_model_at_the_cap() {
    let mut s = settings();
    s.max_model_posts = 25;
    let server = TestServer::start(s).await;

    assert_eq!(server.post_json("/api/posts", &batch(0, 15)).await.status(), 201);
    let g = wait_trained(&server, 15).await;
    assert_eq!(
        (g["posts"].as_u64(), g["skipped_posts"].as_u64()),
        (Some(15), Some(0)),
        "{g}"
    );

    assert_eq!(server.post_json("/api/posts", &batch(15, 15)).await.status(), 201);
    let g = wait_trained(&server, 30).await;
    assert_eq!(
        (g["posts"].as_u64(), g["skipped_posts"].as_u64()),
        (Some(25), Some(5)),
        "{g}"
    );
    let (version, tokens, heap) = (g["version"].clone(), g["tokens"].clone(), g["heap_bytes"].clone());

    assert_eq!(server.post_json("/api/posts", &batch(30, 15)).await.status(), 201);
    let g = wait_trained(&server, 45).await;
    assert_eq!(
        (g["posts"].as_u64(), g["skipped_posts"].as_u64()),
        (Some(25), Some(20)),
        "{g}"
    );
    assert_eq!(g["version"], version, "past the cap the model does not change");
    assert_eq!(g["tokens"], tokens);
    assert_eq!(g["heap_bytes"], heap, "nor does its memory");
    assert_eq!(g["max_posts"], 25);
}

/// The value of an unlabelled series in `/metrics`.
async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = server.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

/// Ingest is acknowledged before training (a background thread learns the
/// posts), yet the posts reach the model: a word only they contain becomes
/// a topic the model can write about, and the trainer's counters say so.
#[tokio::test]
async fn ingested_posts_reach_the_model_in_the_background() {
    let mut s = settings();
    s.seed_demo = true;
    let server = TestServer::start(s).await;
    let topic = json!({"topic": "zorblax", "seed": 3});
    let before = server.post_json("/api/generate", &topic).await;
    assert_eq!(before.status(), 422, "an unknown word is not a topic yet");

    // Varied texts, so the model can write something new about the word.
    let openers = [
        "today the",
        "honestly the",
        "why did the",
        "5 reasons the",
        "breaking: the",
    ];
    let subjects = [
        "zorblax team",
        "zorblax release",
        "zorblax launch",
        "new zorblax build",
    ];
    let verbs = ["shipped", "missed", "crushed", "delayed", "celebrated"];
    let things = ["roadmap", "deadline", "demo", "budget"];
    let ends = [
        "before lunch",
        "after a long week",
        "with no bugs",
        "again",
        "on time for once",
    ];
    let posts: Vec<Value> = (0..200)
        .map(|i| {
            let text = format!(
                "{} {} {} the {} {}",
                openers[i % 5],
                subjects[(i / 5) % 4],
                verbs[(i / 20) % 5],
                things[(i / 7) % 4],
                ends[(i / 3) % 5]
            );
            json!({"id": format!("z-{i}"), "text": text})
        })
        .collect();
    assert_eq!(
        server
            .post_json("/api/posts", &Value::Array(posts))
            .await
            .status(),
        201
    );
    wait_trained(&server, 1_200).await;

    let r = server.post_json("/api/generate", &topic).await;
    assert_eq!(r.status(), 200, "the model learned the ingested posts");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["posts"][0]["text"].as_str().unwrap().contains("zorblax"),
        "{body}"
    );
    // The trainer counts a pass after the model has learned it (and runs at
    // nice 19), so the counter may trail the model by a moment.
    let mut trained = 0.0;
    for _ in 0..200 {
        trained = metric(&server, "brisk_server_training_posts_total").await;
        if trained >= 200.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(trained >= 200.0, "the trainer counted {trained} posts");
    assert_eq!(
        metric(&server, "brisk_server_training_dropped_posts_total").await,
        0.0
    );
}

/// A full training queue drops training samples, never the ingest: the
/// posts are acknowledged and stored, the drops are counted in /metrics.
#[tokio::test]
async fn a_full_training_queue_drops_samples_not_posts() {
    let mut s = settings();
    s.train_queue_posts = 10;
    let server = TestServer::start(s).await;
    let r = server.post_json("/api/posts", &batch(0, 40)).await;
    assert_eq!(r.status(), 201, "ingest never waits for training");
    let page: Value = server.get("/api/posts?limit=100").await.json().await.unwrap();
    assert_eq!(
        page["posts"].as_array().unwrap().len(),
        40,
        "every post is stored"
    );
    assert_eq!(
        metric(&server, "brisk_server_training_dropped_posts_total").await,
        30.0
    );
    let g = wait_trained(&server, 10).await;
    assert_eq!(g["posts"], 10, "the 10 that fit were learned: {g}");
    let summary: Value = server.get("/api/performance/summary").await.json().await.unwrap();
    assert_eq!(summary["components"]["training"]["dropped_posts"], 30);
}
