//! The PostgreSQL pool against a real server: connecting, bad input,
//! timeouts, statistics, the slow-query log, `explain` and index usage.

use std::time::Duration;

use brisk_core::StatsReport;
#[cfg(feature = "tls")]
use brisk_db_pool::rustls;
use brisk_db_pool::{Error, PgPool, Recycle};
use brisk_testkit::TestDatabase;

pub(crate) async fn pool_for(db: &TestDatabase) -> PgPool {
    PgPool::builder()
        .url(db.url())
        .max_size(4)
        .min_idle(1)
        .build()
        .await
        .expect("pool")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_prewarms_and_queries() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = PgPool::builder()
        .url(db.url())
        .max_size(5)
        .min_idle(3)
        .recycle(Recycle::Rollback)
        .build()
        .await
        .expect("pool");
    let stats = pool.stats();
    assert_eq!((stats.size, stats.idle, stats.in_use), (3, 3, 0), "{stats:?}");
    assert_eq!(stats.connections_created, 3);
    let row = pool
        .query_one("SELECT $1::int8 + 1", &[&41i64])
        .await
        .expect("query");
    assert_eq!(row.get::<_, i64>(0), 42);
    let name: String = pool
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!name.is_empty());

    // Rollback on return: a transaction left open is rolled back.
    pool.batch_execute("CREATE TABLE t (v int)").await.unwrap();
    {
        let conn = pool.get().await.unwrap();
        conn.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
            .await
            .unwrap();
    }
    let n: i64 = pool
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);

    // The error carries SQLSTATE, class and the statement.
    let err = pool.query("SELEC 1", &[]).await.unwrap_err();
    assert_eq!(err.sqlstate(), Some("42601"));
    assert_eq!(err.retry_class(), brisk_db_pool::RetryClass::Never);
    assert!(err.to_string().starts_with("SELEC 1: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_database_is_named() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let url = format!(
        "postgres://{}@{}:{}/no_such_db_here",
        db.user(),
        db.host(),
        db.port()
    );
    match PgPool::connect(&url).await {
        Err(Error::DatabaseMissing { database, server }) => {
            assert_eq!(database, "no_such_db_here");
            assert_eq!(server, format!("{}:{}", db.host(), db.port()));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_times_out_after_the_wait_timeout() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = PgPool::builder()
        .url(db.url())
        .max_size(1)
        .min_idle(1)
        .wait_timeout(Duration::from_millis(200))
        .build()
        .await
        .expect("pool");
    let held = pool.get().await.expect("the one connection");
    let started = std::time::Instant::now();
    match pool.get().await {
        Err(e @ Error::PoolTimeout { .. }) => {
            assert!(e.is_pool_timeout());
            assert!(e.to_string().contains("all 1 connections are in use"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    drop(held);
    pool.get().await.expect("free again");
    let stats = pool.stats();
    assert_eq!(stats.timeouts, 1);
    assert!(stats.wait.max >= Duration::from_millis(190), "{stats:?}");
    let report = StatsReport::collect(&pool);
    assert_eq!(report.value("brisk_db_pool_timeouts_total"), Some(1.0));
    assert_eq!(report.value("brisk_db_pool_max_size"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slow_query_log_catches_pg_sleep() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = PgPool::builder()
        .url(db.url())
        .min_idle(1)
        .slow_query_threshold(Duration::from_millis(100))
        .slow_query_log_size(5)
        .build()
        .await
        .expect("pool");
    for i in 0..20i64 {
        pool.query_one("SELECT $1::int8", &[&i]).await.unwrap();
    }
    pool.query("SELECT pg_sleep(0.25)", &[]).await.expect("sleep");
    let slow = pool.slow_queries();
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(slow[0].statement, "SELECT pg_sleep(?)");
    assert!(slow[0].elapsed >= Duration::from_millis(250), "{slow:?}");
    let stats = pool.query_stats();
    let fast = stats
        .iter()
        .find(|s| s.statement == "SELECT $1::int8")
        .expect("timed");
    assert_eq!(fast.latency.count, 20);
    assert!(fast.latency.p50 <= fast.latency.p99 && fast.latency.p99 <= fast.latency.max);
    let report = StatsReport::collect(&pool);
    assert_eq!(report.value("brisk_db_slow_queries_total"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_flags_sequential_scans_and_index_usage_is_listed() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = pool_for(&db).await;
    pool.batch_execute(
        "CREATE TABLE items (id bigint PRIMARY KEY, v bigint NOT NULL); \
         INSERT INTO items SELECT g, g % 100 FROM generate_series(1, 20000) g; ANALYZE items",
    )
    .await
    .unwrap();
    let scan = pool
        .explain("SELECT * FROM items WHERE v = $1", &[&5i64])
        .await
        .expect("explain");
    assert_eq!(scan.seq_scans, ["items"], "{:?}", scan.lines);
    let indexed = pool
        .explain("SELECT * FROM items WHERE id = $1", &[&5i64])
        .await
        .expect("explain");
    assert!(!indexed.has_seq_scan(), "{:?}", indexed.lines);
    pool.query("SELECT * FROM items WHERE id = $1", &[&5i64])
        .await
        .unwrap();
    let usage = pool.index_usage().await.expect("index usage");
    let pkey = usage
        .iter()
        .find(|u| u.index == "items_pkey")
        .expect("the primary key index");
    assert_eq!((pkey.schema.as_str(), pkey.table.as_str()), ("public", "items"));
    assert!(pkey.scans >= 0);
}

/// Waiters are served in arrival order (FIFO): the fairness the
/// `db_pool_fairness` bench measures rests on this.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_first_come_first_served() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = PgPool::builder()
        .url(db.url())
        .max_size(1)
        .min_idle(1)
        .build()
        .await
        .expect("pool");
    let held = pool.get().await.unwrap();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (waiter, order) = (pool.clone(), std::sync::Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let conn = waiter.get().await.expect("served");
            order.lock().unwrap().push(i);
            conn.query_one("SELECT 1", &[]).await.expect("SELECT 1");
        }));
        // Wait until this task is queued before starting the next.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while pool.stats().waiting < i + 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "waiter {i} never queued: {:?}",
                pool.stats()
            );
            tokio::task::yield_now().await;
        }
    }
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
}

/// `sslmode=require` needs the `tls` feature; with it, a server without TLS
/// is an error naming the server, while the default `prefer` falls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_is_honoured() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let url = format!(
        "postgres://{}@{}:{}/{}?sslmode=require",
        db.user(),
        db.host(),
        db.port(),
        db.dbname()
    );
    let result = PgPool::connect(&url).await;
    if cfg!(feature = "tls") {
        match result {
            Err(Error::Connect { server, reason, .. }) => {
                assert_eq!(server, format!("{}:{}", db.host(), db.port()));
                assert!(reason.to_lowercase().contains("tls"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let prefer = format!(
            "postgres://{}@{}:{}/{}?sslmode=prefer",
            db.user(),
            db.host(),
            db.port(),
            db.dbname()
        );
        PgPool::connect(&prefer)
            .await
            .expect("prefer falls back to plain TCP");
    } else {
        match result {
            Err(Error::Config(e)) => assert_eq!(e.field(), "pool.url"),
            other => panic!("{other:?}"),
        }
    }
}

/// The default recycling check (`Recycle::Auto`): no round trip within the
/// idle window, a ping after it, a `ROLLBACK` when a transaction was left
/// open; time is a manual clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_check_pings_after_idle_and_rolls_back_what_was_left_open() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let clock = brisk_core::ManualClock::new();
    let pool = PgPool::builder()
        .url(db.url())
        .max_size(1)
        .min_idle(1)
        .clock(std::sync::Arc::new(clock.clone()))
        .build()
        .await
        .expect("pool");
    pool.batch_execute("CREATE TABLE t (v int)").await.unwrap();
    let before = pool.stats();

    // Used a moment ago: no round trip.
    drop(pool.get().await.unwrap());
    let s = pool.stats();
    assert_eq!((s.pings, s.rollbacks), (before.pings, before.rollbacks), "{s:?}");

    // Idle past the window (500 ms by default): pinged first.
    clock.advance(Duration::from_millis(600));
    drop(pool.get().await.unwrap());
    let s = pool.stats();
    assert_eq!(s.pings, before.pings + 1, "{s:?}");

    // A transaction opened by hand and left open is rolled back at the next
    // checkout, without waiting for the window.
    {
        let conn = pool.get().await.unwrap();
        conn.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
            .await
            .unwrap();
    }
    let n: i64 = pool
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the open transaction was rolled back");
    let s = pool.stats();
    assert_eq!(s.rollbacks, before.rollbacks + 1, "{s:?}");
    assert_eq!(s.recycle_failures, 0, "{s:?}");
}

/// After a server restart, a checkout hands out a working connection: the
/// dead ones fail the default check and are replaced, and the caller sees no
/// error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_after_a_server_restart_works() {
    let Some(server) = brisk_testkit::postgres_server() else {
        return;
    };
    let clock = brisk_core::ManualClock::new();
    let pool = PgPool::builder()
        .url(server.url())
        .max_size(3)
        .min_idle(3)
        .clock(std::sync::Arc::new(clock.clone()))
        .build()
        .await
        .expect("pool");
    let first = {
        let conn = pool.get().await.unwrap();
        backend_pid(&conn).await.unwrap()
    };
    assert_eq!(pool.stats().size, 3);

    let server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.restart().expect("restart");
        server
    })
    .await
    .unwrap();

    // Every pooled connection is dead now. Each checkout still gets a
    // working one, the first query on it succeeds, and it is a new backend.
    for _ in 0..3 {
        let conn = pool.get().await.expect("checkout after restart");
        let now = backend_pid(&conn).await.expect("the first query after a restart");
        assert_ne!(now, first);
    }
    // The same once the connections sat idle past the window (a ping).
    clock.advance(Duration::from_secs(1));
    let conn = pool.get().await.expect("checkout");
    backend_pid(&conn).await.expect("query");
    let s = pool.stats();
    assert!(s.recycle_failures >= 1, "{s:?}");
    assert_eq!(s.timeouts, 0, "{s:?}");
    drop(conn);
    drop(server);
}

async fn backend_pid(conn: &brisk_db_pool::PgConn) -> Result<i32, Error> {
    Ok(conn.query_one("SELECT pg_backend_pid()", &[]).await?.get(0))
}

/// A rustls client configuration that trusts only `ca_der`.
#[cfg(feature = "tls")]
fn trusting(ca_der: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .expect("CA certificate");
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The `tls` feature against a server with `ssl = on` and a certificate
/// from a throwaway CA: trusting that CA, `sslmode=require` connects and the
/// server sees TLS; trusting another CA, the pool refuses to start with an
/// error naming the certificate problem.
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connects_with_sslmode_require_and_a_trusted_ca() {
    if brisk_testkit::skip_services() {
        brisk_testkit::skip("starts its own PostgreSQL server with TLS");
        return;
    }
    let server = tokio::task::spawn_blocking(|| brisk_testkit::PostgresServer::builder().tls().start())
        .await
        .unwrap()
        .expect("PostgreSQL with TLS");
    let certs = server.tls().expect("certificates");
    let url = format!("{}?sslmode=require", server.url());

    let pool = PgPool::builder()
        .url(&url)
        .tls_config(trusting(certs.ca_der()))
        .build()
        .await
        .expect("a TLS pool");
    let row = pool
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    assert!(row.get::<_, bool>(0), "the server sees no TLS");
    assert!(row.get::<_, String>(1).starts_with("TLSv1."));

    // A CA that did not sign the server's certificate.
    let other = brisk_testkit::TestCertificates::generate().expect("another CA");
    let refused = PgPool::builder()
        .url(&url)
        .tls_config(trusting(other.ca_der()))
        .build()
        .await;
    match refused {
        Err(err @ Error::Connect { .. }) => {
            let message = err.to_string();
            eprintln!("refused as expected: {message}");
            assert!(
                message.contains("certificate") && message.contains(&server.port().to_string()),
                "{message}"
            );
        }
        other => panic!("a server certificate from an unknown CA was accepted: {other:?}"),
    }
    drop(pool);
    tokio::task::spawn_blocking(move || drop(server)).await.unwrap();
}

/// A connection past its (jittered) lifetime, or idle in the pool past the
/// idle timeout, is closed and replaced at checkout; time is a manual clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifetime_and_idle_timeout_replace_connections() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let clock = brisk_core::ManualClock::new();
    let pool = PgPool::builder()
        .url(db.url())
        .max_size(1)
        .min_idle(1)
        .max_lifetime(Duration::from_secs(3600))
        .lifetime_jitter(Duration::from_secs(300))
        .idle_timeout(Duration::from_secs(600))
        .clock(std::sync::Arc::new(clock.clone()))
        .build()
        .await
        .expect("pool");
    let pid_now = async || backend_pid(&pool.get().await.unwrap()).await.unwrap();
    let first = pid_now().await;

    // Used every 5 minutes: never idle too long, and younger than
    // `max_lifetime - jitter`: the same connection.
    for _ in 0..11 {
        clock.advance(Duration::from_secs(300));
        assert_eq!(pid_now().await, first);
    }
    assert_eq!(pool.stats().expired, 0);

    // Past the lifetime (55 min + 5 min): a new connection.
    clock.advance(Duration::from_secs(300));
    let second = pid_now().await;
    assert_ne!(second, first);
    assert_eq!(pool.stats().expired, 1);

    // Idle past the idle timeout: a new connection again.
    clock.advance(Duration::from_secs(601));
    let third = pid_now().await;
    assert_ne!(third, second);
    let s = pool.stats();
    assert_eq!((s.expired, s.timeouts), (2, 0), "{s:?}");
}
