//! The `Store` facade: the backend picked from the URL, and bad URLs.

use brisk_db_pool::{Backend, Error, Store};

use crate::{TempDir, migrations};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_urls_open_the_embedded_backend() {
    let dir = TempDir::new("store");
    let store = Store::connect(&format!("sqlite://{}", dir.path("s.db").display()))
        .await
        .expect("connect");
    assert_eq!(store.backend(), Backend::Sqlite);
    assert_eq!(
        store.migrate(&migrations()).await.expect("migrate").applied,
        [1, 2]
    );
    store
        .execute_batch("INSERT INTO posts VALUES (1, 'a', 'b')")
        .await
        .expect("insert");
    assert_eq!(
        store
            .query_i64("SELECT count(*) FROM posts")
            .await
            .expect("count"),
        1
    );
    let report = brisk_core::StatsReport::collect(&store);
    assert!(report.value("brisk_db_slow_queries_total").is_some());
}

#[tokio::test]
async fn bad_urls_name_the_problem() {
    match Store::connect("mysql://root:hunter2@db/app").await {
        Err(Error::UnknownScheme { scheme, url }) => {
            assert_eq!(scheme, "mysql");
            assert!(!url.contains("hunter2"));
        }
        other => panic!("{other:?}"),
    }
    match Store::connect("not a url").await {
        Err(e @ Error::InvalidUrl { .. }) => assert!(e.to_string().contains("expected `<scheme>://")),
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_url_errors_are_errors_not_hangs() {
    // A port nobody listens on: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    match Store::connect(&format!("postgres://u@127.0.0.1:{port}/db")).await {
        Err(Error::Connect { server, .. }) => assert_eq!(server, format!("127.0.0.1:{port}")),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    match Store::connect("postgres://u@127.0.0.1:notaport/db").await {
        Err(Error::InvalidUrl { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_i64_reads_every_integer_width_and_refuses_the_rest() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let store = Store::connect(db.url()).await.expect("connect");
    for (sql, want) in [
        ("SELECT 7::int2", 7),
        ("SELECT (-70000)::int4", -70_000),
        ("SELECT 5000000000::int8", 5_000_000_000),
        ("SELECT count(*) FROM pg_class WHERE false", 0),
    ] {
        assert_eq!(store.query_i64(sql).await.expect(sql), want, "{sql}");
    }
    match store.query_i64("SELECT 'seven'::text").await {
        Err(Error::Database { message, .. }) => {
            assert!(message.contains("integer"), "{message}");
            assert!(message.contains("text"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(store.query_i64("SELECT 1::int4 WHERE false").await.is_err());
}
