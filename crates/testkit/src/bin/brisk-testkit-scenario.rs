//! Scenario runner for brisk-testkit's own integration tests (`tests/it`),
//! and for nothing else: it is built only with both features on, and a crate
//! that depends on the library never builds it.
//!
//! Some behaviour depends on the environment of the whole process or on the
//! process ending (`DATABASE_URL` / `REDIS_URL`, teardown after a normal
//! exit or an abort), so the tests run it as a child process:
//!
//! ```text
//! brisk-testkit-scenario <scenario> [argument]
//! ```
//!
//! | scenario | what it checks |
//! |---|---|
//! | `given-servers <port>` | `postgres()` and `redis()` use `DATABASE_URL` (on `<port>`) and `REDIS_URL`; it makes a database and a key there, both removed again on drop |
//! | `own-server` | with a non-PostgreSQL `DATABASE_URL`, `postgres()` starts its own server |
//! | `teardown exit` / `teardown abort` | starts all four kinds of server, prints `BRISK_IT_PORTS <4 ports>`, leaks them, then returns from `main` or aborts |
//!
//! A failed check panics (exit status 101). A scenario that completes
//! prints `scenario <scenario>: ok` as its last line (`teardown abort`
//! aborts instead).

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["given-servers", port] => given_servers(port),
        ["own-server"] => own_server(),
        ["teardown", how @ ("exit" | "abort")] => teardown(how),
        _ => panic!(
            "usage: brisk-testkit-scenario given-servers <port> | own-server | teardown exit|abort (got {args:?})"
        ),
    }
    println!("scenario {}: ok", args.join(" "));
}

/// `DATABASE_URL` and `REDIS_URL` name servers the tests started: the
/// database and keys are made there (and removed again when dropped here).
fn given_servers(port: &str) {
    let redis_url = std::env::var("REDIS_URL").expect("REDIS_URL");

    let db = brisk_testkit::postgres().expect("not skipping");
    assert_eq!(db.port().to_string(), port);
    assert_eq!((db.host(), db.user()), ("127.0.0.1", "postgres"));
    assert_eq!(
        db.url(),
        format!(
            "postgresql://postgres@127.0.0.1:{port}/{}?application_name=brisk_it",
            db.dbname()
        )
    );
    let (name, app): (String, String) = block_on(async {
        let client = pg_connect(db.url()).await;
        let sql = "SELECT current_database()::text, current_setting('application_name')";
        let row = client.query_one(sql, &[]).await.expect("query");
        (row.get(0), row.get(1))
    });
    assert_eq!((name.as_str(), app.as_str()), (db.dbname(), "brisk_it"));

    let kv = brisk_testkit::redis().expect("not skipping");
    assert_eq!(kv.url(), redis_url);
    let mut con = redis::Client::open(kv.url())
        .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(5)))
        .expect("connect to Redis");
    redis::cmd("SET")
        .arg(kv.key("k"))
        .arg(1)
        .exec(&mut con)
        .expect("SET");
}

/// A `DATABASE_URL` that is not PostgreSQL's is ignored: a server is started.
fn own_server() {
    let db = brisk_testkit::postgres().expect("not skipping");
    assert!(
        db.url().starts_with("postgres://postgres@127.0.0.1:"),
        "{}",
        db.url()
    );
    block_on(async {
        let client = pg_connect(db.url()).await;
        client.simple_query("SELECT 1").await.expect("query");
    });
}

/// Starts a shared and a private server of each kind, prints their ports and
/// leaks them all; the watchdogs must stop them once this process ends.
fn teardown(how: &str) {
    let db = brisk_testkit::postgres().expect("not skipping");
    let kv = brisk_testkit::redis().expect("not skipping");
    let pg = brisk_testkit::postgres_server().expect("not skipping");
    let rs = brisk_testkit::redis_server().expect("not skipping");
    let kv_port = kv
        .url()
        .trim_start_matches("redis://127.0.0.1:")
        .trim_end_matches('/')
        .to_owned();
    println!(
        "BRISK_IT_PORTS {} {kv_port} {} {}",
        db.port(),
        pg.port(),
        rs.port()
    );
    if how == "abort" {
        std::process::abort();
    }
    // Leak the private servers too: the watchdogs must cover them.
    std::mem::forget((db, kv, pg, rs));
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// Connects to PostgreSQL at `url`, driving the connection on a task.
async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}
