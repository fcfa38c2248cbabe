//! Errors that tell a developer what to fix. These need no server, so they
//! run even with `BRISK_SKIP_SERVICES` set.

use brisk_testkit::{PostgresServer, RedisServer, TestkitError};

fn empty_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "brisk-testkit-it-empty-{}-{:016x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).expect("create empty dir");
    dir
}

#[test]
fn missing_postgres_binaries_name_the_package() {
    let dir = empty_dir();
    let err = PostgresServer::builder()
        .bin_dir(&dir)
        .start()
        .expect_err("no binaries there");
    std::fs::remove_dir(&dir).expect("remove empty dir");
    assert!(
        matches!(&err, TestkitError::BinaryNotFound { binary, package: "postgresql", .. } if binary == "initdb"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("initdb not found in "), "{message}");
    assert!(message.contains("apt-get install -y postgresql"), "{message}");
}

#[test]
fn missing_redis_binary_names_the_package() {
    let missing = empty_dir().join("redis-server");
    let err = RedisServer::builder()
        .binary(&missing)
        .start()
        .expect_err("no binary there");
    std::fs::remove_dir(missing.parent().unwrap()).expect("remove empty dir");
    assert!(
        matches!(
            &err,
            TestkitError::BinaryNotFound {
                package: "redis-server",
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("redis-server not found"), "{message}");
    assert!(message.contains("apt-get install -y redis-server"), "{message}");
}

#[test]
fn a_server_that_cannot_start_reports_its_log() {
    if brisk_testkit::skip_services() {
        brisk_testkit::skip("starts a Redis server");
        return;
    }
    let err = RedisServer::builder()
        .setting("no-such-option", "1")
        .start()
        .expect_err("redis-server rejects unknown options");
    let TestkitError::StartFailed { server, log_tail, .. } = &err else {
        panic!("expected StartFailed, got {err:?}");
    };
    assert_eq!(*server, "Redis");
    assert!(log_tail.contains("no-such-option"), "{log_tail}");
    assert!(err.to_string().contains("no-such-option"), "{err}");
}
