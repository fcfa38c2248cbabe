//! The SQLite backend: migrations, the batch writer in every mode, and
//! acknowledged rows surviving a crash and a drop mid-batch.

use std::process::Command;
use std::time::Duration;

use brisk_db_pool::{ColumnType, Dialect, Error, Migrations, SqliteStore, Table, WriteMode};

use crate::{TempDir, migrations};

fn posts_table() -> Table {
    Table::builder("posts")
        .column("id", ColumnType::Int8)
        .column("author", ColumnType::Text)
        .column("body", ColumnType::Text)
        .key(["id"])
        .build()
        .expect("table")
}

async fn count(store: &SqliteStore, sql: &'static str) -> i64 {
    store
        .read(move |c| c.query_row(sql, [], |r| r.get(0)))
        .await
        .expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_in_wal_mode_with_the_settings() {
    let dir = TempDir::new("wal");
    let store = SqliteStore::builder()
        .path(dir.path("nested/dir/app.db"))
        .readers(2)
        .busy_timeout(Duration::from_millis(1500))
        .cache_size_kib(2048)
        .wal_autocheckpoint_pages(5000)
        .build()
        .expect("open");
    let checkpoint: i64 = store
        .write(|c| c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)))
        .await
        .expect("writer pragma");
    assert_eq!(checkpoint, 5000);
    let (mode, sync, busy, cache): (String, i64, i64, i64) = store
        .read(|c| {
            Ok((
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                c.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?,
                c.query_row("PRAGMA cache_size", [], |r| r.get(0))?,
            ))
        })
        .await
        .expect("pragmas");
    assert_eq!((mode.as_str(), sync, busy, cache), ("wal", 1, 1500, -2048));
    // Readers are read-only.
    let err = store
        .read(|c| c.execute_batch("CREATE TABLE nope (x)"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("readonly") || err.to_string().contains("read-only"),
        "{err}"
    );
    assert_eq!(
        SqliteStore::builder().readers(0).build().unwrap_err().to_string(),
        "invalid configuration: `sqlite.readers` must be at least 1"
    );
    match SqliteStore::builder().wal_autocheckpoint_pages(0).build() {
        Err(Error::Config(e)) => assert_eq!(e.field(), "sqlite.wal_autocheckpoint_pages"),
        other => panic!("{other:?}"),
    }
    match SqliteStore::builder().path(":memory:").build() {
        Err(Error::Config(e)) => assert_eq!(e.field(), "sqlite.path"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_reapply_and_refuse_changes() {
    let dir = TempDir::new("migrate");
    let store = SqliteStore::open(dir.path("m.db")).expect("open");
    let first = store.migrate(&migrations()).await.expect("apply");
    assert_eq!(
        (first.applied.as_slice(), first.already_applied),
        (&[1, 2][..], 0)
    );
    let again = store.migrate(&migrations()).await.expect("re-apply");
    assert_eq!((again.applied.len(), again.already_applied), (0, 2));
    assert_eq!(count(&store, "SELECT count(*) FROM brisk_migrations").await, 2);

    let changed = Migrations::builder()
        .file(
            Dialect::Sqlite,
            "0001_create_posts.sql",
            "CREATE TABLE posts (id INTEGER PRIMARY KEY)",
        )
        .build()
        .unwrap();
    match store.migrate(&changed).await {
        Err(Error::MigrationChanged { version, name, .. }) => {
            assert_eq!((version, name.as_str()), (1, "create_posts"));
        }
        other => panic!("{other:?}"),
    }

    // A failing migration applies nothing of its run.
    let failing = Migrations::builder()
        .file(Dialect::Sqlite, "0003_ok.sql", "CREATE TABLE later (x INTEGER)")
        .file(Dialect::Sqlite, "0004_bad.sql", "CREATE TABLE oops (")
        .build()
        .unwrap();
    match store.migrate(&failing).await {
        Err(Error::MigrationFailed { version, .. }) => assert_eq!(version, 4),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        count(&store, "SELECT count(*) FROM sqlite_master WHERE name = 'later'").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrators_apply_once() {
    let dir = TempDir::new("migrate2");
    let path = dir.path("m.db");
    let a = SqliteStore::open(&path).expect("open a");
    let b = SqliteStore::open(&path).expect("open b");
    let ms = migrations();
    let (ra, rb) = tokio::join!(a.migrate(&ms), b.migrate(&ms));
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert_eq!(ra.applied.len() + rb.applied.len(), 2, "{ra:?} {rb:?}");
    assert_eq!(count(&a, "SELECT count(*) FROM brisk_migrations").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_writer_modes() {
    let dir = TempDir::new("batch");
    let store = SqliteStore::open(dir.path("b.db")).expect("open");
    store.migrate(&migrations()).await.expect("migrate");

    // Copy (plain inserts), several writes in one batch, acknowledged after commit.
    let writer = store
        .batch_writer::<(i64, String, String)>(posts_table())
        .max_batch_rows(500)
        .build()
        .expect("writer");
    let mut receipts = Vec::new();
    for chunk in 0..5i64 {
        let rows = (chunk * 250..chunk * 250 + 250)
            .map(|id| (id, format!("a{}", id % 7), format!("post {id}")))
            .collect();
        receipts.push(writer.write(rows).await.expect("queue"));
    }
    let mut acked = 0;
    for r in receipts {
        let ack = r.await.expect("committed");
        assert_eq!(ack.rows, 250);
        assert!(ack.batch_rows >= 250 && ack.attempts == 1, "{ack:?}");
        acked += ack.rows;
    }
    assert_eq!(acked, 1250);
    assert_eq!(count(&store, "SELECT count(*) FROM posts").await, 1250);
    assert_eq!(writer.stats().rows_written, 1250);

    // A duplicate key in Copy mode is a constraint error for that batch.
    let err = writer
        .write_and_wait(vec![(1, "x".into(), "dup".into())])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    assert_eq!(writer.stats().failed_batches, 1);

    // InsertIgnore: duplicates are skipped, new rows go in.
    let ignore = store
        .batch_writer::<(i64, String, String)>(posts_table())
        .mode(WriteMode::InsertIgnore)
        .build()
        .expect("writer");
    ignore
        .write_and_wait(
            (1240..1260)
                .map(|id| (id, "b".to_owned(), "again".to_owned()))
                .collect(),
        )
        .await
        .expect("ignore");
    assert_eq!(count(&store, "SELECT count(*) FROM posts").await, 1260);
    assert_eq!(
        count(&store, "SELECT count(*) FROM posts WHERE body = 'again'").await,
        10
    );

    // Upsert and Update change rows by key.
    let upsert = store
        .batch_writer::<(i64, String, String)>(posts_table())
        .mode(WriteMode::Upsert)
        .build()
        .expect("writer");
    upsert
        .write_and_wait(vec![
            (0, "z".into(), "upserted".into()),
            (5000, "z".into(), "new".into()),
        ])
        .await
        .expect("upsert");
    let update = store
        .batch_writer::<(i64, String, String)>(posts_table())
        .mode(WriteMode::Update)
        .build()
        .expect("writer");
    update
        .write_and_wait(vec![
            (1, "y".into(), "updated".into()),
            (99_999, "y".into(), "missing".into()),
        ])
        .await
        .expect("update");
    assert_eq!(count(&store, "SELECT count(*) FROM posts").await, 1261);
    assert_eq!(
        count(&store, "SELECT count(*) FROM posts WHERE author = 'z'").await,
        2
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM posts WHERE body = 'updated' AND author = 'y'"
        )
        .await,
        1
    );
    assert!(
        store
            .query_stats()
            .iter()
            .any(|s| s.statement == "batch write to posts")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_flushes_by_time_and_checks_its_input() {
    let dir = TempDir::new("flush");
    let store = SqliteStore::open(dir.path("f.db")).expect("open");
    store.migrate(&migrations()).await.expect("migrate");
    let writer = store
        .batch_writer::<Vec<brisk_db_pool::Value>>(posts_table())
        .max_batch_rows(10_000)
        .queue_rows(10_000)
        .flush_interval(Duration::from_millis(20))
        .build()
        .expect("writer");
    // Far below the batch size: only the flush interval can write it.
    let ack = tokio::time::timeout(
        Duration::from_secs(10),
        writer.write_and_wait(vec![vec![1i64.into(), "a".into(), "b".into()]]),
    )
    .await
    .expect("flushed by time")
    .expect("committed");
    assert_eq!((ack.rows, ack.batch_rows), (1, 1));
    match writer.write(vec![vec![1i64.into()]]).await {
        Err(Error::RowShape {
            expected: 3,
            found: 1,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let too_many = (0..10_001)
        .map(|i| vec![i64::from(i).into(), "a".into(), "b".into()])
        .collect();
    assert!(matches!(
        writer.write(too_many).await,
        Err(Error::BatchTooLarge {
            rows: 10_001,
            capacity: 10_000
        })
    ));
    let bad = store
        .batch_writer::<(i64, String, String)>(posts_table())
        .queue_rows(10)
        .max_batch_rows(20)
        .build();
    match bad {
        Err(Error::Config(e)) => assert_eq!(e.field(), "batch_writer.queue_rows"),
        other => panic!("{other:?}"),
    }
    let no_key = Table::builder("posts")
        .column("id", ColumnType::Int8)
        .build()
        .unwrap();
    match store
        .batch_writer::<(i64,)>(no_key)
        .mode(WriteMode::Upsert)
        .build()
    {
        Err(Error::Config(e)) => assert_eq!(e.field(), "batch_writer.mode"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_holds_writers_while_the_queue_is_full() {
    let dir = TempDir::new("bp");
    let store = SqliteStore::open(dir.path("bp.db")).expect("open");
    store.migrate(&migrations()).await.expect("migrate");
    let writer = store
        .batch_writer::<(i64, String, String)>(posts_table())
        .max_batch_rows(100)
        .queue_rows(100)
        .build()
        .expect("writer");
    // Hold the writer connection so the first batch cannot commit.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = store.clone();
    let blocker = tokio::spawn(async move {
        holder
            .write(move |_conn| {
                locked_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
            .await
    });
    tokio::task::spawn_blocking(move || locked_rx.recv().unwrap())
        .await
        .unwrap();
    let first = writer
        .write((0..100).map(|i| (i, "a".into(), "b".into())).collect())
        .await
        .expect("fits");
    let second = tokio::time::timeout(
        Duration::from_millis(200),
        writer.write(vec![(100, "a".into(), "b".into())]),
    )
    .await;
    assert!(second.is_err(), "a full queue must make the writer wait");
    release_tx.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    first.await.expect("first batch");
    writer
        .write_and_wait(vec![(100, "a".into(), "b".into())])
        .await
        .expect("room again");
    assert_eq!(count(&store, "SELECT count(*) FROM posts").await, 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_mid_batch_keeps_every_acknowledged_row() {
    let dir = TempDir::new("drop");
    let path = dir.path("d.db");
    let mut acked = Vec::new();
    {
        let store = SqliteStore::open(&path).expect("open");
        store.migrate(&migrations()).await.expect("migrate");
        let writer = store
            .batch_writer::<(i64, String, String)>(posts_table())
            .build()
            .expect("writer");
        for b in 0..10i64 {
            let ids: Vec<i64> = (b * 100..b * 100 + 100).collect();
            writer
                .write_and_wait(
                    ids.iter()
                        .map(|&id| (id, "a".to_owned(), "b".to_owned()))
                        .collect(),
                )
                .await
                .expect("batch");
            acked.extend(ids);
        }
        // One more batch in flight, then everything is dropped.
        let _unacked = writer
            .write((5000..5100).map(|id| (id, "a".into(), "b".into())).collect())
            .await
            .expect("queued");
        drop(writer);
        drop(store);
    }
    let reopened = SqliteStore::open(&path).expect("reopen");
    let ids: Vec<i64> = reopened
        .read(|c| {
            let mut s = c.prepare("SELECT id FROM posts WHERE id < 5000 ORDER BY id")?;
            s.query_map([], |r| r.get(0))?.collect()
        })
        .await
        .expect("read back");
    assert_eq!(ids, acked);
}

#[test]
fn a_crash_mid_batch_keeps_every_acknowledged_row() {
    let dir = TempDir::new("crash");
    let path = dir.path("crash.db");
    let output = Command::new(env!("CARGO_BIN_EXE_brisk-db-pool-scenario"))
        .arg("sqlite-crash")
        .arg(&path)
        .output()
        .expect("run the scenario");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "the scenario must die mid-batch: {}\n{stdout}",
        output.status
    );
    assert_eq!(
        output.status.code(),
        None,
        "killed by SIGABRT, not an exit: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let acks: Vec<(i64, i64)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ACK "))
        .map(|l| {
            let (a, b) = l.split_once(' ').expect("two ids");
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(acks.len(), 20, "{stdout}");

    let conn = rusqlite::Connection::open(&path).expect("reopen after the crash");
    for (first, last) in acks {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM crash WHERE id BETWEEN ?1 AND ?2",
                (first, last),
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(n, last - first + 1, "rows {first}..={last} were acknowledged");
    }
    let total: i64 = conn
        .query_row("SELECT count(*) FROM crash", [], |r| r.get(0))
        .unwrap();
    assert!(
        total == 2000 || total == 2100,
        "an unacknowledged batch is all or nothing: {total}"
    );
}
