//! PostgreSQL through the shared server and private servers.

use crate::{block_on, pg_connect};

#[tokio::test]
async fn shared_database_round_trip_inside_a_runtime() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    assert!(db.url().ends_with(&format!("/{}", db.dbname())), "{}", db.url());
    assert!(db.dbname().starts_with("brisk_t_"));
    assert!(db.port() > 0);
    assert!(!db.host().is_empty() && !db.user().is_empty());

    let client = pg_connect(db.url()).await.expect("connect");
    client
        .batch_execute("CREATE TABLE posts (id int PRIMARY KEY, body text NOT NULL)")
        .await
        .expect("create table");
    client
        .execute("INSERT INTO posts VALUES ($1, $2)", &[&1_i32, &"hello"])
        .await
        .expect("insert");
    let row = client
        .query_one("SELECT body, current_database() FROM posts WHERE id = 1", &[])
        .await
        .expect("select");
    assert_eq!(row.get::<_, &str>(0), "hello");
    assert_eq!(row.get::<_, &str>(1), db.dbname());
    // `db` is dropped here, inside the runtime: must not panic or deadlock.
}

#[test]
fn two_calls_give_two_databases() {
    let Some(a) = brisk_testkit::postgres() else {
        return;
    };
    let Some(b) = brisk_testkit::postgres() else {
        return;
    };
    assert_ne!(a.dbname(), b.dbname());
    assert_ne!(a.url(), b.url());

    block_on(async {
        let in_a = pg_connect(a.url()).await.expect("connect a");
        let in_b = pg_connect(b.url()).await.expect("connect b");
        in_a.batch_execute("CREATE TABLE only_in_a (x int)")
            .await
            .expect("create in a");
        let exists = "SELECT to_regclass('only_in_a') IS NOT NULL";
        let seen_in_a: bool = in_a.query_one(exists, &[]).await.expect("query a").get(0);
        let seen_in_b: bool = in_b.query_one(exists, &[]).await.expect("query b").get(0);
        assert!(seen_in_a);
        assert!(
            !seen_in_b,
            "a table made in one test database is visible in another"
        );
    });
}

#[test]
fn dropping_the_handle_drops_the_database() {
    let Some(watcher) = brisk_testkit::postgres() else {
        return;
    };
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let name = db.dbname().to_owned();
    block_on(async {
        let client = pg_connect(watcher.url()).await.expect("connect");
        // An open connection must not keep the database from being dropped.
        let lingering = pg_connect(db.url()).await.expect("connect to the test database");
        let count = "SELECT count(*) FROM pg_database WHERE datname = $1";
        let before: i64 = client.query_one(count, &[&name]).await.expect("count").get(0);
        assert_eq!(before, 1);
        drop(db);
        let after: i64 = client.query_one(count, &[&name]).await.expect("count").get(0);
        assert_eq!(
            after, 0,
            "database {name} still exists after its handle was dropped"
        );
        assert!(lingering.simple_query("SELECT 1").await.is_err());
    });
}

#[tokio::test]
async fn private_server_stops_and_restarts_with_its_data() {
    let Some(mut server) = brisk_testkit::postgres_server() else {
        return;
    };
    let port = server.port();
    assert!(server.is_running());
    assert_eq!(
        server.url(),
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    );

    let db = server.create_database().expect("create database");
    assert_eq!(db.port(), port);
    assert_eq!(db.host(), "127.0.0.1");
    assert_eq!(db.user(), "postgres");
    let client = pg_connect(db.url()).await.expect("connect");
    client
        .batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')")
        .await
        .expect("write");

    server.stop().expect("stop");
    assert!(!server.is_running());
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "old connection still answers"
    );
    assert!(
        pg_connect(db.url()).await.is_err(),
        "a stopped server accepted a connection"
    );
    server.stop().expect("stopping a stopped server is a no-op");

    server.start_again().expect("start again");
    assert!(server.is_running());
    assert_eq!(server.port(), port, "the port changed across a restart");
    let client = pg_connect(db.url()).await.expect("connect after start");
    let row = client
        .query_one("SELECT v FROM kept", &[])
        .await
        .expect("read back");
    assert_eq!(row.get::<_, &str>(0), "before restart");

    server.restart().expect("restart");
    assert!(client.simple_query("SELECT 1").await.is_err());
    let client = pg_connect(db.url()).await.expect("connect after restart");
    let rows = client.query("SELECT v FROM kept", &[]).await.expect("read back");
    assert_eq!(rows.len(), 1);
}

#[test]
fn builder_settings_reach_the_server() {
    if brisk_testkit::skip_services() {
        brisk_testkit::skip("starts its own PostgreSQL server");
        return;
    }
    let mut server = brisk_testkit::PostgresServer::builder()
        .setting("max_connections", "37")
        .setting("application_name", "it's quoted")
        .start()
        .expect("start");
    let show = |server: &brisk_testkit::PostgresServer| {
        block_on(async {
            let client = pg_connect(&server.url()).await.expect("connect");
            let max: String = client
                .query_one("SHOW max_connections", &[])
                .await
                .unwrap()
                .get(0);
            let fsync: String = client.query_one("SHOW fsync", &[]).await.unwrap().get(0);
            (max, fsync)
        })
    };
    assert_eq!(show(&server), ("37".to_owned(), "off".to_owned()));
    server.restart().expect("restart");
    assert_eq!(
        show(&server),
        ("37".to_owned(), "off".to_owned()),
        "settings lost on restart"
    );
}

#[test]
fn start_again_on_a_taken_port_fails_with_the_server_log() {
    let Some(mut server) = brisk_testkit::postgres_server() else {
        return;
    };
    let port = server.port();
    server.stop().expect("stop");
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the port");

    let err = server.start_again().expect_err("the port is taken");
    let brisk_testkit::TestkitError::StartFailed {
        server: name,
        port: failed_port,
        log_tail,
        ..
    } = &err
    else {
        panic!("expected StartFailed, got {err:?}");
    };
    assert_eq!((*name, *failed_port), ("PostgreSQL", port));
    assert!(log_tail.contains("already in use"), "{log_tail}");
    assert!(!server.is_running());

    drop(squatter);
    server.start_again().expect("starts once the port is free again");
    assert!(server.is_running());
}

/// A server started with `tls()` has `ssl = on` with the generated
/// certificate, and still accepts plain connections. (The TLS handshake
/// itself is tested by brisk-db-pool's `tls` feature tests, which have a
/// TLS client.)
#[cfg(feature = "tls")]
#[test]
fn tls_server_serves_the_generated_certificate() {
    if brisk_testkit::skip_services() {
        brisk_testkit::skip("starts its own PostgreSQL server");
        return;
    }
    let server = brisk_testkit::PostgresServer::builder()
        .tls()
        .start()
        .expect("start");
    let certs = server.tls().expect("certificates");
    assert!(certs.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(certs.ca_pem(), certs.server_cert_pem());
    let (ssl, file) = block_on(async {
        let client = pg_connect(&server.url()).await.expect("connect");
        let ssl: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
        let file: String = client.query_one("SHOW ssl_cert_file", &[]).await.unwrap().get(0);
        (ssl, file)
    });
    assert_eq!((ssl.as_str(), file.as_str()), ("on", "server.crt"));

    let plain = brisk_testkit::PostgresServer::start().expect("start");
    assert!(plain.tls().is_none());
}
