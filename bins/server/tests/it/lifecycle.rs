//! Startup, demo seeding, settings errors and graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::{TestServer, settings, temp_dir};

#[tokio::test]
async fn the_first_start_seeds_the_demo_and_a_restart_does_not() {
    let mut s = settings();
    s.seed_demo = true;
    let server = TestServer::start(s.clone()).await;
    let page: Value = server.get("/api/posts?limit=1000").await.json().await.unwrap();
    assert_eq!(page["posts"].as_array().unwrap().len(), 1000);
    assert!(page["next_cursor"].is_null());
    let alerts: Value = server.get("/api/alerts?limit=1000").await.json().await.unwrap();
    assert!(
        !alerts["alerts"].as_array().unwrap().is_empty(),
        "the demo raises alerts"
    );
    assert!(server.dir.join("dictionary.toml").exists());
    let dir = server.stop().await;

    let again = TestServer::start(s).await;
    let r = again
        .post_json("/api/posts", &json!({"id": "one-more", "text": "after restart"}))
        .await;
    assert_eq!(r.status(), 201);
    let page: Value = again.get("/api/posts?limit=1000").await.json().await.unwrap();
    let next = page["next_cursor"].as_str().expect("a second page").to_owned();
    let rest: Value = again
        .get(&format!("/api/posts?limit=1000&cursor={next}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        rest["posts"].as_array().unwrap().len(),
        1,
        "1,001 posts: not seeded twice"
    );
    drop(again);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1012_and_keeps_acknowledged_posts() {
    let s = settings();
    let server = TestServer::start(s.clone()).await;
    let ws_url = format!("ws://{}/ws", server.base.trim_start_matches("http://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    ws.send(Message::text(
        json!({"type": "subscribe", "topic": "posts"}).to_string(),
    ))
    .await
    .unwrap();

    let mut acknowledged = 0;
    for batch in 0..5 {
        let posts: Vec<Value> = (0..200)
            .map(|i| json!({"id": format!("b{batch}-{i}"), "text": format!("post {i} of batch {batch}")}))
            .collect();
        let r = server.post_json("/api/posts", &Value::Array(posts)).await;
        assert_eq!(r.status(), 201);
        acknowledged += 200;
    }
    let dir = server.stop().await;

    let close = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(msg) = ws.next().await {
            if let Ok(Message::Close(frame)) = msg {
                return frame;
            }
        }
        None
    })
    .await
    .expect("the socket closes");
    assert_eq!(close.expect("a close frame").code, CloseCode::Restart, "1012");

    let again = TestServer::start(s).await;
    let page: Value = again.get("/api/posts?limit=1000").await.json().await.unwrap();
    assert_eq!(page["posts"].as_array().unwrap().len(), acknowledged);
    drop(again);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_invalid_setting_stops_the_binary_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_brisk-server"))
        .env_clear()
        .args(["--listen", "not-an-address"])
        .env("BRISK_DATA_DIR", temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BRISK_LISTEN") && stderr.contains("not-an-address"),
        "{stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_brisk-server"))
        .env_clear()
        .env("MAX_MEMORY_CACHE_ITEMS", "lots")
        .env("BRISK_DATA_DIR", temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAX_MEMORY_CACHE_ITEMS"));
}

/// Starts the real binary on port 0 with its data in `dir`.
fn spawn_binary(dir: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_brisk-server"))
        .env_clear()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--seed-demo",
            "false",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(dir)
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads the child's JSON logs until it listens; returns its address.
fn listening(child: &mut std::process::Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("a log line").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if v["message"].as_str().is_some_and(|m| m.starts_with("listening")) {
            // Keep draining the logs so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return v["addr"].as_str().unwrap().to_owned();
        }
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let sent = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Every post id in the database, through the API.
async fn all_ids(client: &reqwest::Client, addr: &str) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let page: Value = client
            .get(format!("http://{addr}/api/posts?limit=1000{cursor}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for p in page["posts"].as_array().unwrap() {
            ids.insert(p["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return ids,
        }
    }
}

/// The real binary: an ingest acknowledged, SIGTERM, a clean exit, and the
/// post is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_binary_gracefully() {
    let dir = temp_dir();
    let mut child = spawn_binary(&dir);
    let addr = tokio::task::block_in_place(|| listening(&mut child));
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{addr}/api/posts"))
        .json(&json!({"id": "kept", "text": "acknowledged before SIGTERM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    signal(&child, "-TERM");
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert!(status.success(), "exit status {status}");

    let mut child = spawn_binary(&dir);
    let addr = tokio::task::block_in_place(|| listening(&mut child));
    assert!(all_ids(&client, &addr).await.contains("kept"));
    signal(&child, "-TERM");
    let _ = tokio::task::block_in_place(|| child.wait());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `sig` while four clients ingest batches; after a restart, every
/// acknowledged post is there. Returns the exit status.
async fn signal_during_ingest(sig: &str) -> std::process::ExitStatus {
    let dir = temp_dir();
    let mut child = spawn_binary(&dir);
    let addr = tokio::task::block_in_place(|| listening(&mut child));
    let client = reqwest::Client::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
    // Four writers, each sending batches of 100 until the server dies.
    for writer in 0..4 {
        let (client, addr, tx) = (client.clone(), addr.clone(), tx.clone());
        tokio::spawn(async move {
            for batch in 0.. {
                let ids: Vec<String> = (0..100).map(|i| format!("w{writer}-b{batch}-{i}")).collect();
                let posts: Vec<Value> = ids
                    .iter()
                    .map(|id| json!({"id": id, "text": format!("post {id}")}))
                    .collect();
                match client
                    .post(format!("http://{addr}/api/posts"))
                    .json(&posts)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 201 => {
                        if tx.send(ids).is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        });
    }
    drop(tx);
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 2_000 {
        acknowledged.extend(rx.recv().await.expect("acknowledgements"));
    }
    signal(&child, sig);
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    // Acknowledgements that arrived before the process died count too.
    while let Some(ids) = rx.recv().await {
        acknowledged.extend(ids);
    }

    let mut child = spawn_binary(&dir);
    let addr = tokio::task::block_in_place(|| listening(&mut child));
    let stored = all_ids(&client, &addr).await;
    let missing = acknowledged.iter().filter(|id| !stored.contains(*id)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged posts lost",
        acknowledged.len()
    );
    signal(&child, "-TERM");
    let _ = tokio::task::block_in_place(|| child.wait());
    let _ = std::fs::remove_dir_all(&dir);
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingest_loses_no_acknowledged_post() {
    let status = signal_during_ingest("-KILL").await;
    assert!(!status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_ingest_exits_cleanly_and_loses_no_acknowledged_post() {
    let status = signal_during_ingest("-TERM").await;
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_corpus_is_imported_instead_of_the_demo_and_only_once() {
    let mut s = settings();
    s.seed_demo = true;
    std::fs::create_dir_all(&s.data_dir).unwrap();
    let file = s.data_dir.join("corpus.csv");
    let mut csv = String::from("handle,body,when\n");
    for i in 0..30 {
        csv.push_str(&format!(
            "@user{},\"Post {i}, about $ACME earnings and more\",{}\n",
            i % 3,
            1_800_000_000_000_i64 + i
        ));
    }
    std::fs::write(&file, csv).unwrap();
    s.corpus = Some(
        brisk_server::CorpusSpec::parse(file, None, Some("author=handle,text=body,created_at=when")).unwrap(),
    );
    let server = TestServer::start(s.clone()).await;
    let page: Value = server.get("/api/posts?limit=1000").await.json().await.unwrap();
    let posts = page["posts"].as_array().unwrap();
    assert_eq!(posts.len(), 30, "the corpus, not the demo");
    assert_eq!(posts[0]["text"], "Post 29, about $ACME earnings and more");
    assert_eq!(posts[0]["author"], "@user2");
    let alerts: Value = server
        .get("/api/alerts?entity=acme&limit=1000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 30);
    let dir = server.stop().await;

    let again = TestServer::start(s).await;
    let page: Value = again.get("/api/posts?limit=1000").await.json().await.unwrap();
    assert_eq!(page["posts"].as_array().unwrap().len(), 30, "imported once");
    drop(again);
    let _ = std::fs::remove_dir_all(dir);
}
