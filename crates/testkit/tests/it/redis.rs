//! Redis through the shared server and private servers.

use crate::redis_connect;

#[test]
fn shared_prefix_round_trip() {
    let Some(kv) = brisk_testkit::redis() else { return };
    assert!(kv.url().starts_with("redis://"), "{}", kv.url());
    assert!(kv.prefix().starts_with("brisk:t:") && kv.prefix().ends_with(':'));
    assert_eq!(kv.key("a"), format!("{}a", kv.prefix()));

    let mut con = redis_connect(kv.url()).expect("connect");
    redis::cmd("SET")
        .arg(kv.key("greeting"))
        .arg("hello")
        .exec(&mut con)
        .expect("SET");
    let value: String = redis::cmd("GET")
        .arg(kv.key("greeting"))
        .query(&mut con)
        .expect("GET");
    assert_eq!(value, "hello");
}

#[test]
fn two_prefixes_do_not_see_each_other() {
    let Some(a) = brisk_testkit::redis() else { return };
    let Some(b) = brisk_testkit::redis() else { return };
    assert_ne!(a.prefix(), b.prefix());
    assert!(!a.prefix().starts_with(b.prefix()) && !b.prefix().starts_with(a.prefix()));

    let mut con = redis_connect(a.url()).expect("connect");
    redis::cmd("SET")
        .arg(a.key("k"))
        .arg("from a")
        .exec(&mut con)
        .expect("SET a");
    let in_b: Option<String> = redis::cmd("GET").arg(b.key("k")).query(&mut con).expect("GET b");
    assert_eq!(in_b, None);
    redis::cmd("SET")
        .arg(b.key("k"))
        .arg("from b")
        .exec(&mut con)
        .expect("SET b");
    let in_a: String = redis::cmd("GET").arg(a.key("k")).query(&mut con).expect("GET a");
    assert_eq!(in_a, "from a");
}

#[test]
fn dropping_the_handle_deletes_its_keys() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let Some(other) = brisk_testkit::redis() else {
        return;
    };
    let mut con = redis_connect(kv.url()).expect("connect");
    let pattern = format!("{}*", kv.prefix());
    for i in 0..2500 {
        redis::cmd("SET")
            .arg(kv.key(&format!("k{i}")))
            .arg(i)
            .exec(&mut con)
            .expect("SET");
    }
    redis::cmd("SET")
        .arg(other.key("survivor"))
        .arg(1)
        .exec(&mut con)
        .expect("SET other");
    drop(kv);
    let left: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut con).expect("KEYS");
    assert!(left.is_empty(), "{} keys left under {pattern}", left.len());
    let survivor: Option<i64> = redis::cmd("GET")
        .arg(other.key("survivor"))
        .query(&mut con)
        .expect("GET other");
    assert_eq!(survivor, Some(1), "another test's key was deleted");
}

#[tokio::test]
async fn usable_inside_a_runtime() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let mut con = redis_connect(kv.url()).expect("connect");
    redis::cmd("SET")
        .arg(kv.key("x"))
        .arg(1)
        .exec(&mut con)
        .expect("SET");
    drop(kv); // deletes keys from inside the runtime
    let left: Option<i64> = redis::cmd("GET").arg("x").query(&mut con).expect("GET");
    assert_eq!(left, None);
}

#[test]
fn private_server_stops_and_restarts() {
    let Some(mut server) = brisk_testkit::redis_server() else {
        return;
    };
    let port = server.port();
    assert!(server.is_running());
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/"));

    let mut con = redis_connect(&server.url()).expect("connect");
    let pong: String = redis::cmd("PING").query(&mut con).expect("PING");
    assert_eq!(pong, "PONG");
    redis::cmd("SET").arg("k").arg("v").exec(&mut con).expect("SET");

    server.stop().expect("stop");
    assert!(!server.is_running());
    assert!(
        redis::cmd("PING").query::<String>(&mut con).is_err(),
        "old connection still answers"
    );
    assert!(
        redis_connect(&server.url()).is_err(),
        "a stopped server accepted a connection"
    );
    server.stop().expect("stopping a stopped server is a no-op");

    server.start_again().expect("start again");
    assert!(server.is_running());
    assert_eq!(server.port(), port, "the port changed across a restart");
    let mut con = redis_connect(&server.url()).expect("connect after start");
    let pong: String = redis::cmd("PING").query(&mut con).expect("PING");
    assert_eq!(pong, "PONG");
    let k: Option<String> = redis::cmd("GET").arg("k").query(&mut con).expect("GET");
    assert_eq!(k, None, "a private Redis server has no persistence");

    server.restart().expect("restart");
    assert!(redis::cmd("PING").query::<String>(&mut con).is_err());
    let mut con = redis_connect(&server.url()).expect("connect after restart");
    let pong: String = redis::cmd("PING").query(&mut con).expect("PING");
    assert_eq!(pong, "PONG");
}

#[test]
fn builder_settings_reach_the_server() {
    if brisk_testkit::skip_services() {
        brisk_testkit::skip("starts its own Redis server");
        return;
    }
    let server = brisk_testkit::RedisServer::builder()
        .setting("maxmemory", "12mb")
        .start()
        .expect("start");
    let mut con = redis_connect(&server.url()).expect("connect");
    let (_, value): (String, u64) = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut con)
        .expect("CONFIG GET");
    assert_eq!(value, 12 * 1024 * 1024);
}

#[test]
fn start_again_on_a_taken_port_fails_with_the_server_log() {
    let Some(mut server) = brisk_testkit::redis_server() else {
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
    assert_eq!((*name, *failed_port), ("Redis", port));
    assert!(log_tail.contains("already in use"), "{log_tail}");
    assert!(!server.is_running());

    drop(squatter);
    server.start_again().expect("starts once the port is free again");
    assert!(server.is_running());
}
