//! The PostgreSQL batch writer: every mode, per-batch results, and the fault
//! test: the server is stopped mid-stream and started again, and no
//! acknowledged row is lost, none is duplicated, and the same pool goes on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use brisk_core::Backoff;
use brisk_db_pool::{ColumnType, Error, PgPool, Recycle, Table, WriteMode};

use crate::migrations;
use crate::pg_pool::pool_for;

fn posts() -> Table {
    Table::builder("posts")
        .column("id", ColumnType::Int8)
        .column("author", ColumnType::Text)
        .column("body", ColumnType::Text)
        .key(["id"])
        .build()
        .unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    pool.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_writes_and_acknowledges_after_commit() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = pool_for(&db).await;
    pool.migrate(&migrations()).await.unwrap();

    let copy = pool
        .batch_writer::<(i64, String, String)>(posts())
        .max_batch_rows(1000)
        .build()
        .unwrap();
    let mut receipts = Vec::new();
    for chunk in 0..5i64 {
        let rows = (chunk * 500..chunk * 500 + 500)
            .map(|id| (id, format!("a{}", id % 9), format!("post {id}")))
            .collect();
        receipts.push(copy.write(rows).await.unwrap());
    }
    let mut batches = BTreeSet::new();
    for r in receipts {
        let ack = r.await.expect("committed");
        assert_eq!((ack.rows, ack.attempts), (500, 1));
        batches.insert(ack.batch);
    }
    assert!(
        batches.len() >= 3,
        "2,500 rows in batches of at most ~1,000: {batches:?}"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM posts").await, 2500);

    // A constraint violation fails its batch with the SQLSTATE, not retried.
    let err = copy
        .write_and_wait(vec![(1, "x".into(), "dup".into())])
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("23505"), "{err}");
    assert_eq!(copy.stats().failed_batches, 1);
    assert_eq!(copy.stats().retries, 0);

    let ignore = pool
        .batch_writer::<(i64, String, String)>(posts())
        .mode(WriteMode::InsertIgnore)
        .build()
        .unwrap();
    for _ in 0..2 {
        // Twice: the second run adds nothing (and duplicates inside a batch are fine).
        let mut rows: Vec<_> = (2490..2510)
            .map(|id| (id, "b".to_owned(), "again".to_owned()))
            .collect();
        rows.push((2509, "b".into(), "again".into()));
        ignore.write_and_wait(rows).await.expect("insert-ignore");
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM posts").await, 2510);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM posts WHERE body = 'again'").await,
        10
    );

    let upsert = pool
        .batch_writer::<(i64, String, String)>(posts())
        .mode(WriteMode::Upsert)
        .build()
        .unwrap();
    upsert
        .write_and_wait(vec![
            (0, "z".into(), "upserted".into()),
            (9000, "z".into(), "new".into()),
        ])
        .await
        .expect("upsert");
    let update = pool
        .batch_writer::<(i64, String, String)>(posts())
        .mode(WriteMode::Update)
        .build()
        .unwrap();
    update
        .write_and_wait(vec![
            (1, "y".into(), "updated".into()),
            (99_999, "y".into(), "missing".into()),
        ])
        .await
        .expect("update");
    assert_eq!(count(&pool, "SELECT count(*) FROM posts").await, 2511);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM posts WHERE author = 'z'").await,
        2
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM posts WHERE author = 'y' AND body = 'updated'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_and_nulls_round_trip() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = pool_for(&db).await;
    pool.batch_execute("CREATE TABLE ev (id int4, at timestamptz, score float8, ok bool, raw bytea)")
        .await
        .unwrap();
    let table = Table::builder("ev")
        .column("id", ColumnType::Int4)
        .column("at", ColumnType::Timestamptz)
        .column("score", ColumnType::Float8)
        .column("ok", ColumnType::Bool)
        .column("raw", ColumnType::Bytea)
        .build()
        .unwrap();
    let w = pool
        .batch_writer::<(i32, brisk_core::Timestamp, Option<f64>, bool, Vec<u8>)>(table)
        .build()
        .unwrap();
    let at = brisk_core::Timestamp::from_unix_millis(1_795_343_400_123);
    w.write_and_wait(vec![(7, at, None, true, vec![1, 2])])
        .await
        .expect("write");
    let row = pool
        .query_one(
            "SELECT (extract(epoch FROM at) * 1000)::int8, score IS NULL, ok, raw FROM ev",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1_795_343_400_123);
    assert!(row.get::<_, bool>(1));
    assert!(row.get::<_, bool>(2));
    assert_eq!(row.get::<_, Vec<u8>>(3), [1, 2]);
}

/// Writes 50-row batches of increasing ids while the server is stopped and
/// started again, with up to `parallel` batches in flight; returns once all
/// writes have resolved.
async fn fault_run(mode: WriteMode, parallel: usize, recycle: Recycle) {
    if brisk_testkit::skip_services() {
        brisk_testkit::skip("needs a private PostgreSQL server to stop and restart");
        return;
    }
    let Some(server) = brisk_testkit::postgres_server() else {
        return;
    };
    let pool = PgPool::builder()
        .url(server.url())
        .max_size(4)
        .min_idle(2)
        .recycle(recycle)
        .create_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("pool");
    // No unique key in Copy mode: a duplicated row would show.
    let ddl = if mode == WriteMode::Copy {
        "CREATE TABLE posts (id bigint NOT NULL, author text NOT NULL, body text NOT NULL)"
    } else {
        "CREATE TABLE posts (id bigint PRIMARY KEY, author text NOT NULL, body text NOT NULL)"
    };
    pool.batch_execute(ddl).await.unwrap();
    let table = if mode == WriteMode::Copy {
        Table::builder("posts")
            .column("id", ColumnType::Int8)
            .column("author", ColumnType::Text)
            .column("body", ColumnType::Text)
            .build()
            .unwrap()
    } else {
        posts()
    };
    let writer = Arc::new(
        pool.batch_writer::<(i64, String, String)>(table)
            .mode(mode)
            .max_batch_rows(200)
            .flush_interval(Duration::from_millis(10))
            .parallel_batches(parallel)
            .retry(
                Backoff::builder()
                    .base(Duration::from_millis(20))
                    .cap(Duration::from_millis(300))
                    .max_attempts(60)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
    );

    let server = Arc::new(std::sync::Mutex::new(server));
    let (stop_at, writes) = (30i64, 120i64);
    let mut waits = Vec::new();
    for w in 0..writes {
        if w == stop_at {
            let server = Arc::clone(&server);
            // Stop now, start again a little later, while writes go on.
            tokio::task::spawn_blocking(move || {
                let mut s = server.lock().unwrap();
                s.stop().expect("stop");
                std::thread::sleep(Duration::from_millis(700));
                s.start_again().expect("start again");
            });
        }
        let ids: Vec<i64> = (w * 50..w * 50 + 50).collect();
        let receipt = writer
            .write(
                ids.iter()
                    .map(|&id| (id, "a".to_owned(), format!("post {id}")))
                    .collect(),
            )
            .await
            .expect("queued");
        waits.push(tokio::spawn(async move { (ids, receipt.await) }));
        tokio::time::sleep(Duration::from_millis(8)).await;
    }
    let mut acked = BTreeSet::new();
    let mut failed = Vec::new();
    for wait in waits {
        let (ids, result) = wait.await.unwrap();
        match result {
            Ok(_) => acked.extend(ids),
            Err(e) => failed.push(e),
        }
    }
    // The pool recovered without being rebuilt: a write after the restart works.
    writer
        .write_and_wait(vec![(1_000_000, "after".into(), "restart".into())])
        .await
        .expect("the same writer and pool work after the restart");
    assert!(server.lock().unwrap().is_running());

    let in_db: Vec<i64> = pool
        .query_idempotent("SELECT id FROM posts WHERE id < 1000000 ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    eprintln!(
        "fault run {mode:?} x{parallel}: {} rows acknowledged, {} writes failed, writer {:?}, pool {:?}",
        acked.len(),
        failed.len(),
        writer.stats(),
        pool.stats()
    );
    let distinct: BTreeSet<i64> = in_db.iter().copied().collect();
    assert_eq!(distinct.len(), in_db.len(), "no row is duplicated");
    let lost: Vec<_> = acked.difference(&distinct).collect();
    assert!(
        lost.is_empty(),
        "acknowledged rows lost: {} (first {:?})",
        lost.len(),
        lost.first()
    );
    assert!(
        writer.stats().retries >= 1,
        "the outage was seen and retried: {:?}",
        writer.stats()
    );
    let stats = pool.stats();
    assert!(stats.recycle_failures + stats.connect_failures >= 1, "{stats:?}");
    if mode.is_idempotent() {
        // Idempotent batches are retried through anything, so all succeed.
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(acked.len(), (writes * 50) as usize);
    } else {
        // Copy gives up only where the outcome is unknown, never silently.
        for e in &failed {
            assert!(
                matches!(
                    e,
                    Error::OutcomeUnknown { .. } | Error::BatchFailed { .. } | Error::RetriesExhausted { .. }
                ),
                "{e:?}"
            );
        }
        assert!(
            acked.len() >= ((writes - 10) * 50) as usize,
            "{} acked, {failed:?}",
            acked.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_stream_copy() {
    fault_run(WriteMode::Copy, 1, Recycle::Fast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_stream_insert_ignore() {
    fault_run(WriteMode::InsertIgnore, 1, Recycle::Fast).await;
}

/// Three batches in flight at once, on three connections, with the default
/// recycling check: the same guarantees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_stream_parallel_copy() {
    fault_run(WriteMode::Copy, 3, Recycle::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_stream_parallel_insert_ignore() {
    fault_run(WriteMode::InsertIgnore, 3, Recycle::default()).await;
}

/// Parallel batches: every write is acknowledged after its own commit,
/// every row lands once, a flush waits for every batch in flight, and
/// `parallel_batches(0)` is refused naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_batches_write_every_row_once() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = PgPool::builder()
        .url(db.url())
        .max_size(4)
        .build()
        .await
        .expect("pool");
    pool.batch_execute("CREATE TABLE events (id bigint NOT NULL, kind text NOT NULL, n bigint NOT NULL)")
        .await
        .unwrap();
    let table = || {
        Table::builder("events")
            .column("id", ColumnType::Int8)
            .column("kind", ColumnType::Text)
            .column("n", ColumnType::Int8)
            .build()
            .unwrap()
    };
    match pool
        .batch_writer::<(i64, String, i64)>(table())
        .parallel_batches(0)
        .build()
    {
        Err(Error::Config(e)) => assert_eq!(e.field(), "batch_writer.parallel_batches"),
        other => panic!("{other:?}"),
    }
    let writer = pool
        .batch_writer::<(i64, String, i64)>(table())
        .max_batch_rows(2_000)
        .parallel_batches(3)
        .build()
        .unwrap();
    let mut receipts = Vec::new();
    for w in 0..40i64 {
        let rows = (w * 1_000..(w + 1) * 1_000)
            .map(|i| (i, format!("kind {}", i % 7), i * 3))
            .collect();
        receipts.push(writer.write(rows).await.expect("queued"));
    }
    // Unwaited writes, then a flush: it returns after all of them committed.
    writer.flush().await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 40_000);
    let mut batches = BTreeSet::new();
    for r in receipts {
        let ack = r.await.expect("committed");
        assert_eq!(ack.rows, 1_000);
        batches.insert(ack.batch);
    }
    assert!(batches.len() >= 20, "{batches:?}");
    assert_eq!(
        count(&pool, "SELECT count(DISTINCT id) FROM events").await,
        40_000
    );
    assert_eq!(
        count(&pool, "SELECT (sum(n) / 3)::bigint FROM events").await,
        (0..40_000i64).sum::<i64>()
    );
    let stats = writer.stats();
    assert_eq!((stats.rows_written, stats.queued_rows), (40_000, 0), "{stats:?}");
}

/// With the default `parallel_batches(1)`, batch k runs its COPY while
/// batch k-1 commits, yet batches commit in the order of the writes: a
/// deferred trigger logs every row at COMMIT time with a sequence number,
/// and the log read in sequence order is the rows in write order (some
/// commits are made slow, so a batch that did not wait its turn would
/// commit first). Column
/// defaults record when each row was copied and in which transaction, to
/// show that the next batch's COPY did start before the previous COMMIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_batches_commit_in_write_order() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = PgPool::builder()
        .url(db.url())
        .max_size(4)
        .build()
        .await
        .expect("pool");
    pool.batch_execute(
        "CREATE TABLE seq_rows (
             id bigint NOT NULL,
             body text NOT NULL,
             xid bigint NOT NULL DEFAULT txid_current(),
             copied_at timestamptz NOT NULL DEFAULT clock_timestamp()
         );
         CREATE SEQUENCE commit_seq;
         CREATE TABLE commit_log (
             seq bigint NOT NULL,
             id bigint NOT NULL,
             xid bigint NOT NULL,
             committed_at timestamptz NOT NULL
         );
         CREATE FUNCTION log_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             -- Some commits are slow, so a later batch that did not wait
             -- for its turn would commit first.
             IF NEW.id % 5000 = 0 THEN PERFORM pg_sleep(0.2); END IF;
             INSERT INTO commit_log VALUES
                 (nextval('commit_seq'), NEW.id, txid_current(), clock_timestamp());
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER seq_rows_commit AFTER INSERT ON seq_rows
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION log_commit();",
    )
    .await
    .unwrap();
    let table = Table::builder("seq_rows")
        .column("id", ColumnType::Int8)
        .column("body", ColumnType::Text)
        .build()
        .unwrap();
    let writer = pool
        .batch_writer::<(i64, String)>(table)
        .max_batch_rows(1_000)
        .build()
        .unwrap();
    let mut receipts = Vec::new();
    for w in 0..60i64 {
        let rows = (w * 500..(w + 1) * 500)
            .map(|i| (i, format!("row {i}")))
            .collect();
        receipts.push(writer.write(rows).await.expect("queued"));
    }
    let mut acks = Vec::new();
    for r in receipts {
        acks.push(r.await.expect("committed"));
    }
    // Writes are acknowledged by batch, in the order they were made.
    assert!(acks.windows(2).all(|w| w[0].batch <= w[1].batch), "{acks:?}");
    let batches = acks.last().unwrap().batch;
    assert!(batches >= 20, "30,000 rows in batches of ~1,000: {batches}");

    // Commit order: the rows' commit-time sequence follows the write order.
    let logged: Vec<i64> = pool
        .query("SELECT id FROM commit_log ORDER BY seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(logged.len(), 30_000);
    let out_of_order = logged.windows(2).filter(|w| w[0] >= w[1]).count();
    assert_eq!(out_of_order, 0, "rows logged at COMMIT out of write order");
    assert_eq!(
        count(&pool, "SELECT count(DISTINCT xid) FROM seq_rows").await,
        i64::try_from(batches).unwrap(),
        "one transaction per batch"
    );

    // Overlap: some batch began copying before the batch before it had
    // committed (its commit-time trigger ran after the next COPY began).
    let overlapped = count(
        &pool,
        "WITH b AS (
             SELECT r.xid, min(r.id) AS first_id, min(r.copied_at) AS copy_start,
                    max(l.committed_at) AS commit_end
             FROM seq_rows r JOIN commit_log l ON l.id = r.id
             GROUP BY r.xid
         ), o AS (
             SELECT copy_start, lag(commit_end) OVER (ORDER BY first_id) AS prev_commit
             FROM b
         )
         SELECT count(*) FROM o WHERE copy_start < prev_commit",
    )
    .await;
    assert!(
        overlapped >= 1,
        "no batch started before the previous one committed ({batches} batches)"
    );
    eprintln!("{overlapped} of {batches} batches overlapped the previous commit");
    let stats = writer.stats();
    assert_eq!((stats.rows_written, stats.retries), (30_000, 0), "{stats:?}");
}
