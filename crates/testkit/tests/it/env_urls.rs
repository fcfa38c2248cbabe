//! `DATABASE_URL` and `REDIS_URL` point the shared functions at existing
//! servers; a non-PostgreSQL `DATABASE_URL` is ignored.

use crate::{assert_scenario_ok, block_on, pg_connect, redis_connect, run_scenario};

#[test]
fn database_url_and_redis_url_are_used_when_set() {
    let Some(pg) = brisk_testkit::postgres_server() else {
        return;
    };
    let Some(rs) = brisk_testkit::redis_server() else {
        return;
    };
    let database_url = format!(
        "postgresql://postgres@127.0.0.1:{}/postgres?application_name=brisk_it",
        pg.port()
    );
    let port = pg.port().to_string();
    let scenario = ["given-servers", &port];
    let output = run_scenario(
        &scenario,
        &[("DATABASE_URL", &database_url), ("REDIS_URL", &rs.url())],
    );
    assert_scenario_ok(&output, &scenario);

    // The child's database and keys were made on our servers, and removed
    // again when its handles were dropped.
    let left: i64 = block_on(async {
        let client = pg_connect(&pg.url()).await.expect("connect");
        let sql = "SELECT count(*) FROM pg_database WHERE datname LIKE 'brisk\\_t\\_%'";
        client.query_one(sql, &[]).await.expect("count").get(0)
    });
    assert_eq!(left, 0, "the child's test database was not dropped");
    let mut con = redis_connect(&rs.url()).expect("connect");
    let keys: usize = redis::cmd("DBSIZE").query(&mut con).expect("DBSIZE");
    assert_eq!(keys, 0, "the child's keys were not deleted");
}

#[test]
fn non_postgres_database_url_is_ignored() {
    if brisk_testkit::skip_services() {
        brisk_testkit::skip("starts PostgreSQL in a child process");
        return;
    }
    let output = run_scenario(&["own-server"], &[("DATABASE_URL", "sqlite://data/brisk.db")]);
    assert_scenario_ok(&output, &["own-server"]);
}
