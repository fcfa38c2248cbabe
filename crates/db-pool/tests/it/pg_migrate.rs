//! Migrations on PostgreSQL: apply, re-apply, a changed checksum, a failing
//! migration, and two concurrent migrators behind the advisory lock.

use brisk_db_pool::{Dialect, Error, Migrations};

use crate::migrations;
use crate::pg_pool::pool_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_reapply_and_refuse_a_changed_checksum() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = pool_for(&db).await;
    let first = pool.migrate(&migrations()).await.expect("apply");
    assert_eq!(
        (first.applied.as_slice(), first.already_applied),
        (&[1, 2][..], 0)
    );
    pool.execute("INSERT INTO posts VALUES (1, 'a', 'b')", &[])
        .await
        .expect("the table exists");
    let again = pool.migrate(&migrations()).await.expect("re-apply");
    assert_eq!((again.applied.len(), again.already_applied), (0, 2));

    let changed = Migrations::builder()
        .file(
            Dialect::Postgres,
            "0001_create_posts.sql",
            "CREATE TABLE posts (id bigint)",
        )
        .file(
            Dialect::Postgres,
            "0002_index_author.sql",
            "CREATE INDEX posts_author ON posts (author, id)",
        )
        .build()
        .unwrap();
    let err = pool.migrate(&changed).await.unwrap_err();
    match &err {
        Error::MigrationChanged {
            version,
            name,
            applied,
            embedded,
        } => {
            assert_eq!((*version, name.as_str()), (1, "create_posts"));
            assert_ne!(applied, embedded);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("was changed after it was applied"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_migration_applies_nothing() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = pool_for(&db).await;
    let failing = Migrations::builder()
        .file(Dialect::Postgres, "0001_ok.sql", "CREATE TABLE fine (x int)")
        .file(Dialect::Postgres, "0002_bad.sql", "CREATE TABLE oops (")
        .build()
        .unwrap();
    let err = pool.migrate(&failing).await.unwrap_err();
    assert!(
        matches!(err, Error::MigrationFailed { version: 2, .. }),
        "{err:?}"
    );
    assert_eq!(err.sqlstate(), Some("42601"));
    let n: i64 = pool
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('fine', 'brisk_migrations')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the whole run rolled back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrators_take_turns() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let a = pool_for(&db).await;
    let b = pool_for(&db).await;
    // A slow first migration keeps the lock long enough for both to meet it.
    let slow = Migrations::builder()
        .file(
            Dialect::Postgres,
            "0001_slow.sql",
            "SELECT pg_sleep(0.3); CREATE TABLE posts (id bigint PRIMARY KEY)",
        )
        .file(
            Dialect::Postgres,
            "0002_more.sql",
            "ALTER TABLE posts ADD COLUMN body text",
        )
        .build()
        .unwrap();
    let (ra, rb) = tokio::join!(a.migrate(&slow), b.migrate(&slow));
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    let mut applied = [ra.applied.clone(), rb.applied.clone()];
    applied.sort();
    assert_eq!(applied, [vec![], vec![1, 2]], "one applied both, the other none");
    assert_eq!(ra.already_applied + rb.already_applied, 2);
    let n: i64 = a
        .query_one("SELECT count(*) FROM brisk_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}
