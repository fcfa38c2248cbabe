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
