//! The same server on PostgreSQL (a throwaway database from brisk-testkit):
//! ingest, alerts, pagination and injection-shaped text.

use brisk_server::{Database, Secret};
use serde_json::{Value, json};

use crate::{TestServer, error_body, settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_on_postgresql() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let mut s = settings();
    s.database = Database::Postgres(Secret::from(db.url()));
    s.seed_demo = true;
    let server = TestServer::start(s.clone()).await;

    // The demo was seeded into PostgreSQL, with its alerts.
    let page: Value = server.get("/api/posts?limit=1000").await.json().await.unwrap();
    assert_eq!(page["posts"].as_array().unwrap().len(), 1000);
    let alerts: Value = server
        .get("/api/alerts?limit=5&min_confidence=0.5")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 5);
    assert!(alerts["next_cursor"].is_string());

    // Injection-shaped text and author, back byte for byte.
    let texts = [
        "'); DROP TABLE posts; --",
        "<script>alert(1)</script> $ACME earnings",
        "\" OR 1=1 -- 👩‍👩‍👧",
    ];
    let posts: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("pg-{i}"), "text": t, "author": "$1 OR '1'='1", "created_at": 1_900_000_000_000_i64 + i as i64}))
        .collect();
    let r = server.post_json("/api/posts", &Value::Array(posts)).await;
    assert_eq!(r.status(), 201);
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack["alerts"], 1, "{ack}");

    // Keyset pagination over the three, one per page.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = server
            .get(&format!(
                "/api/posts?author=%241%20OR%20%271%27%3D%271&limit=1{cursor}"
            ))
            .await
            .json()
            .await
            .unwrap();
        for p in page["posts"].as_array().unwrap() {
            seen.push(p["text"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let mut expected: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
    expected.reverse(); // newest first
    assert_eq!(seen, expected);

    let acme: Value = server
        .get("/api/alerts?entity=acme&since=1900000000000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(acme["alerts"][0]["post_id"], "pg-1");

    let ready: Value = server.get("/ready").await.json().await.unwrap();
    let database = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "database")
        .unwrap();
    assert_eq!(database["status"], "healthy");
    assert!(database["detail"].as_str().unwrap().starts_with("postgres"));

    let summary: Value = server.get("/api/performance/summary").await.json().await.unwrap();
    let components = &summary["components"]["database"];
    assert_eq!(components["backend"], "postgres");
    assert!(!components["path"].as_str().unwrap().contains("password"));

    let r = server.get("/api/posts?since=not-a-time").await;
    error_body(r, 422).await;

    // A restart finds the data and does not seed again.
    let dir = server.stop().await;
    let again = TestServer::start(s).await;
    let page: Value = again.get("/api/posts?limit=1000").await.json().await.unwrap();
    assert!(page["next_cursor"].is_string(), "1,003 posts: more than one page");
    drop(again);
    let _ = std::fs::remove_dir_all(dir);
}

/// PostgreSQL stopped mid-run: reads answer 503 instead of hanging, `/ready`
/// says so, a write waits in the batch writer's retries and is acknowledged
/// once the server is back; then everything works again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_down_and_back() {
    let Some(mut pg) = brisk_testkit::postgres_server() else {
        return;
    };
    let db = pg.create_database().unwrap();
    let mut s = settings();
    s.database = Database::Postgres(Secret::from(db.url()));
    let server = TestServer::start(s).await;
    let r = server
        .post_json(
            "/api/posts",
            &json!({"id": "before", "text": "before the outage"}),
        )
        .await;
    assert_eq!(r.status(), 201);

    tokio::task::block_in_place(|| pg.stop()).unwrap();

    let read = tokio::time::timeout(std::time::Duration::from_secs(15), server.get("/api/posts"))
        .await
        .expect("a read answers while the database is down, it does not hang");
    assert!(read.headers().contains_key("retry-after"));
    let body = error_body(read, 503).await;
    assert_eq!(body["error"], "unavailable");
    let ready = server.get("/ready").await;
    assert_eq!(ready.status(), 503);

    // A write during the outage: its batch is retried until the server is back.
    let client = server.client.clone();
    let url = server.url("/api/posts");
    let write = tokio::spawn(async move {
        client
            .post(url)
            .json(&json!({"id": "during", "text": "written during the outage"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!write.is_finished(), "the write waits for the database");
    tokio::task::block_in_place(|| pg.start_again()).unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), write)
        .await
        .expect("the write finishes once the database is back")
        .unwrap();
    assert_eq!(status, 201);

    // Recovered by itself: reads, readiness and both posts.
    let page: Value = server.get("/api/posts").await.json().await.unwrap();
    let ids: Vec<&str> = page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"before") && ids.contains(&"during"), "{ids:?}");
    assert_eq!(server.get("/ready").await.status(), 200);
}

/// PostgreSQL over TLS: a server with a certificate from a throwaway CA,
/// `DATABASE_CA_FILE` naming that CA and `sslmode=require` in the URL. A
/// post is ingested and read back, and PostgreSQL sees the server's
/// connections as TLS; trusting another CA, the server refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_read_over_tls_with_a_trusted_ca() {
    if brisk_testkit::skip_services() {
        brisk_testkit::skip("starts its own PostgreSQL server with TLS");
        return;
    }
    let pg = tokio::task::spawn_blocking(|| brisk_testkit::PostgresServer::builder().tls().start())
        .await
        .unwrap()
        .expect("PostgreSQL with TLS");
    let certs = pg.tls().expect("certificates");
    let mut s = settings();
    std::fs::create_dir_all(&s.data_dir).unwrap();
    let ca = s.data_dir.join("ca.pem");
    std::fs::write(&ca, certs.ca_pem()).unwrap();
    s.database = Database::Postgres(Secret::from(format!("{}?sslmode=require", pg.url()).as_str()));
    s.database_ca_file = Some(ca.clone());
    let server = TestServer::start(s.clone()).await;

    let text = "Over TLS: $ACME ships the release";
    let r = server
        .post_json("/api/posts", &json!({"id": "tls-1", "text": text}))
        .await;
    assert_eq!(r.status(), 201);
    let page: Value = server.get("/api/posts?limit=10").await.json().await.unwrap();
    let posts = page["posts"].as_array().unwrap();
    assert_eq!(posts.len(), 1, "{page}");
    assert_eq!(
        (posts[0]["id"].as_str(), posts[0]["text"].as_str()),
        (Some("tls-1"), Some(text))
    );

    // Seen from PostgreSQL (over a plain connection of the test's own):
    // every connection of the server is TLS.
    let observer = brisk_db_pool::PgPool::connect(&format!("{}?sslmode=disable", pg.url()))
        .await
        .expect("a plain observer connection");
    let row = observer
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'brisk-server'",
            &[],
        )
        .await
        .unwrap();
    let (all, tls): (i64, i64) = (row.get(0), row.get(1));
    assert!(all > 0, "the server has connections");
    assert_eq!(tls, all, "every connection of the server is TLS");
    drop(observer);
    let dir = server.stop().await;
    let _ = std::fs::remove_dir_all(dir);

    // A CA that did not sign PostgreSQL's certificate: no start.
    let mut s = settings();
    std::fs::create_dir_all(&s.data_dir).unwrap();
    let other = s.data_dir.join("other-ca.pem");
    let unrelated = brisk_testkit::TestCertificates::generate().expect("another CA");
    std::fs::write(&other, unrelated.ca_pem()).unwrap();
    s.database = Database::Postgres(Secret::from(pg.url().as_str()));
    s.database_ca_file = Some(other);
    let dir = s.data_dir.clone();
    let err = brisk_server::start(s)
        .await
        .expect_err("an untrusted server certificate");
    let _ = std::fs::remove_dir_all(dir);
    assert!(matches!(err, brisk_server::StartError::Database { .. }), "{err}");
}
