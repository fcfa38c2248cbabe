//! brisk-db-pool benchmarks, against a real PostgreSQL started by
//! brisk-testkit in this process (skipped, with a note, under
//! `BRISK_SKIP_SERVICES=1`), and an SQLite WAL database in a temporary
//! directory.
//!
//! - `db_copy_1m`: 1,000,000 rows of 3 columns (`bigint`, `text` of ~25
//!   bytes, `bigint`; an unlogged table, truncated before each iteration)
//!   through the brisk batch writer (binary COPY, 50,000-row batches, each
//!   its own transaction; the default, which overlaps the next batch's COPY
//!   with the previous one but commits in write order, and
//!   `parallel_batches(2)`, which commits in any order), beside a bare `BinaryCopyInWriter` (one COPY,
//!   one transaction) and prepared multi-row `INSERT … VALUES` in
//!   statements of 1,000 rows. Every function builds its rows inside the
//!   timed loop. Targets: ≥ 1 M rows/s; ≤ 1.2 × `raw_copy`.
//! - `db_pool_get`: one uncontended checkout and return, brisk (the default
//!   `Recycle::Auto`: no round trip within 500 ms of the last use; and
//!   `Recycle::Rollback`, a round trip every time) beside a plain
//!   deadpool-postgres pool (its default, `RecyclingMethod::Fast`). The p99
//!   of 20,000 checkouts is printed too. Target: p99 ≤ 100 µs.
//! - `db_pool_fairness`: 64 tasks on 8 connections, each running `SELECT 1`
//!   20 times; prints the median and worst checkout wait. Target: worst ≤
//!   10 × median.
//! - `sqlite_batch`: 100,000 rows of 3 columns into a WAL database through
//!   the brisk batch writer, beside bare rusqlite (one prepared single-row
//!   `INSERT` per row, one transaction). Target: ≥ 200k rows/s.
//!
//! Run: `cargo bench -p brisk-benches --bench db_pool -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::time::{Duration, Instant};

use brisk_db_pool::tokio_postgres::binary_copy::BinaryCopyInWriter;
use brisk_db_pool::tokio_postgres::types::{ToSql, Type};
use brisk_db_pool::{ColumnType, PgPool, Recycle, SqliteStore, Table};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// Rows per `db_copy_1m` iteration (10,000 in test mode).
fn copy_rows() -> i64 {
    if criterion_test_mode() { 10_000 } else { 1_000_000 }
}

/// Rows per `sqlite_batch` iteration (10,000 in test mode).
fn sqlite_rows() -> i64 {
    if criterion_test_mode() { 10_000 } else { 100_000 }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn body(i: i64) -> String {
    format!("post number {i} about $ABC")
}

fn table(name: &str) -> Table {
    Table::builder(name)
        .column("id", ColumnType::Int8)
        .column("body", ColumnType::Text)
        .column("n", ColumnType::Int8)
        .build()
        .expect("table")
}

fn db_copy_1m(c: &mut Criterion) {
    let Some(db) = brisk_testkit::postgres() else {
        eprintln!("db_copy_1m: skipped (BRISK_SKIP_SERVICES)");
        return;
    };
    let rt = runtime();
    let pool = rt.block_on(async {
        let pool = PgPool::builder()
            .url(db.url())
            .max_size(4)
            .build()
            .await
            .expect("pool");
        pool.batch_execute(
            "CREATE UNLOGGED TABLE copy_bench (id bigint NOT NULL, body text NOT NULL, n bigint NOT NULL)",
        )
        .await
        .expect("table");
        pool
    });
    let truncate = || {
        rt.block_on(pool.batch_execute("TRUNCATE copy_bench"))
            .expect("truncate");
    };
    let mut group = c.benchmark_group("db_copy_1m");
    group.sample_size(10);
    group.throughput(Throughput::Elements(copy_rows() as u64));

    for parallel in [1, 2] {
        let name = if parallel == 1 {
            "brisk batch writer (COPY)".to_owned()
        } else {
            format!("brisk batch writer (COPY, parallel_batches {parallel})")
        };
        group.bench_function(name, |b| {
            let writer = rt.block_on(async {
                pool.batch_writer::<(i64, String, i64)>(table("copy_bench"))
                    .max_batch_rows(50_000)
                    .queue_rows(200_000)
                    .parallel_batches(parallel)
                    .build()
                    .expect("writer")
            });
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    truncate();
                    let start = Instant::now();
                    rt.block_on(async {
                        let mut receipts = Vec::new();
                        for chunk in 0..copy_rows() / 10_000 {
                            let rows = (chunk * 10_000..(chunk + 1) * 10_000)
                                .map(|i| (i, body(i), i * 7))
                                .collect();
                            receipts.push(writer.write(rows).await.expect("queued"));
                        }
                        for r in receipts {
                            r.await.expect("committed");
                        }
                    });
                    total += start.elapsed();
                }
                total
            });
        });
    }

    group.bench_function("raw_copy (bare BinaryCopyInWriter)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                truncate();
                let start = Instant::now();
                rt.block_on(async {
                    let mut conn = pool.get().await.expect("conn");
                    let tx = conn.client_mut().transaction().await.expect("begin");
                    let sink = tx
                        .copy_in("COPY copy_bench (id, body, n) FROM STDIN (FORMAT binary)")
                        .await
                        .expect("copy");
                    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TEXT, Type::INT8]);
                    let mut writer = std::pin::pin!(writer);
                    for i in 0..copy_rows() {
                        let (body, n) = (body(i), i * 7);
                        writer.as_mut().write(&[&i, &body, &n]).await.expect("row");
                    }
                    writer.finish().await.expect("finish");
                    tx.commit().await.expect("commit");
                });
                total += start.elapsed();
            }
            total
        });
    });

    group.bench_function("multirow_insert (prepared VALUES x1000)", |b| {
        let sql = {
            let values: Vec<String> = (0..1000)
                .map(|r| format!("(${}, ${}, ${})", r * 3 + 1, r * 3 + 2, r * 3 + 3))
                .collect();
            format!(
                "INSERT INTO copy_bench (id, body, n) VALUES {}",
                values.join(", ")
            )
        };
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                truncate();
                let start = Instant::now();
                rt.block_on(async {
                    let mut conn = pool.get().await.expect("conn");
                    let tx = conn.client_mut().transaction().await.expect("begin");
                    let stmt = tx.prepare(&sql).await.expect("prepare");
                    for chunk in 0..copy_rows() / 1000 {
                        let rows: Vec<(i64, String, i64)> = (chunk * 1000..(chunk + 1) * 1000)
                            .map(|i| (i, body(i), i * 7))
                            .collect();
                        let params: Vec<&(dyn ToSql + Sync)> = rows
                            .iter()
                            .flat_map(|(i, s, n)| [i as &(dyn ToSql + Sync), s, n])
                            .collect();
                        tx.execute(&stmt, &params).await.expect("insert");
                    }
                    tx.commit().await.expect("commit");
                });
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
    drop(pool);
    drop(db);
}

/// The p99 of `n` timed checkouts.
fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() * 99 / 100]
}

fn db_pool_get(c: &mut Criterion) {
    let Some(db) = brisk_testkit::postgres() else {
        eprintln!("db_pool_get: skipped (BRISK_SKIP_SERVICES)");
        return;
    };
    let rt = runtime();
    let (brisk, brisk_rollback, dead) = rt.block_on(async {
        let brisk = PgPool::builder()
            .url(db.url())
            .max_size(4)
            .min_idle(1)
            .build()
            .await
            .expect("pool");
        let rollback = PgPool::builder()
            .url(db.url())
            .max_size(4)
            .min_idle(1)
            .recycle(Recycle::Rollback)
            .build()
            .await
            .expect("pool");
        let config: brisk_db_pool::tokio_postgres::Config = db.url().parse().expect("url");
        let manager = deadpool_postgres::Manager::new(config, brisk_db_pool::tokio_postgres::NoTls);
        let dead = deadpool_postgres::Pool::builder(manager)
            .max_size(4)
            .build()
            .expect("deadpool");
        drop(dead.get().await.expect("warm"));
        (brisk, rollback, dead)
    });
    let mut group = c.benchmark_group("db_pool_get");
    group.bench_function(BenchmarkId::new("brisk", "Recycle::Auto (default)"), |b| {
        b.iter(|| rt.block_on(async { drop(black_box(brisk.get().await.expect("get"))) }));
    });
    group.bench_function(BenchmarkId::new("brisk", "Recycle::Rollback"), |b| {
        b.iter(|| rt.block_on(async { drop(black_box(brisk_rollback.get().await.expect("get"))) }));
    });
    group.bench_function(
        BenchmarkId::new("deadpool", "RecyclingMethod::Fast (default)"),
        |b| {
            b.iter(|| rt.block_on(async { drop(black_box(dead.get().await.expect("get"))) }));
        },
    );
    group.finish();

    // The target is on the p99, which criterion does not report: time 20,000
    // checkouts one by one.
    let n = if criterion_test_mode() { 100 } else { 20_000 };
    for (name, pool) in [
        ("brisk Recycle::Auto (default)", &brisk),
        ("brisk Recycle::Rollback", &brisk_rollback),
    ] {
        let samples = rt.block_on(async {
            let mut s = Vec::with_capacity(n);
            for _ in 0..n {
                let start = Instant::now();
                drop(pool.get().await.expect("get"));
                s.push(start.elapsed());
            }
            s
        });
        eprintln!("db_pool_get p99 ({name}, {n} checkouts): {:?}", p99(samples));
    }
    let samples = rt.block_on(async {
        let mut s = Vec::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            drop(dead.get().await.expect("get"));
            s.push(start.elapsed());
        }
        s
    });
    eprintln!(
        "db_pool_get p99 (deadpool Fast, {n} checkouts): {:?}",
        p99(samples)
    );
}

/// Whether criterion runs in test mode (`cargo test --benches`, or
/// `cargo bench -- --test`): each function once, so the workloads shrink.
fn criterion_test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let test = args.iter().any(|a| a == "--test");
    !bench || test
}

fn db_pool_fairness(c: &mut Criterion) {
    let Some(db) = brisk_testkit::postgres() else {
        eprintln!("db_pool_fairness: skipped (BRISK_SKIP_SERVICES)");
        return;
    };
    let rt = runtime();
    let pool = rt.block_on(async {
        PgPool::builder()
            .url(db.url())
            .max_size(8)
            .min_idle(8)
            .build()
            .await
            .expect("pool")
    });
    let run = |pool: &PgPool| -> Vec<Duration> {
        rt.block_on(async {
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        let mut waits = Vec::with_capacity(20);
                        for _ in 0..20 {
                            let start = Instant::now();
                            let conn = pool.get().await.expect("get");
                            waits.push(start.elapsed());
                            conn.query_one("SELECT 1", &[]).await.expect("SELECT 1");
                        }
                        waits
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.expect("task"));
            }
            all
        })
    };
    let mut group = c.benchmark_group("db_pool_fairness");
    group.sample_size(10);
    group.bench_function("brisk 64 tasks x 20 SELECT 1 on 8 connections", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(run(&pool));
            }
            start.elapsed()
        });
    });
    group.finish();
    let mut waits = run(&pool);
    waits.sort_unstable();
    let median = waits[waits.len() / 2];
    let worst = waits[waits.len() - 1];
    eprintln!(
        "db_pool_fairness: {} waits, median {median:?}, p99 {:?}, worst {worst:?}, worst/median {:.1}",
        waits.len(),
        waits[waits.len() * 99 / 100],
        worst.as_secs_f64() / median.as_secs_f64().max(1e-9)
    );
}

fn sqlite_batch(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("brisk-bench-sqlite-{}", std::process::id()));
    let rt = runtime();
    let store = SqliteStore::open(dir.join("bench.db")).expect("open");
    rt.block_on(
        store
            .execute_batch("CREATE TABLE rows (id INTEGER NOT NULL, body TEXT NOT NULL, n INTEGER NOT NULL)"),
    )
    .expect("table");
    let clear = || {
        rt.block_on(store.execute_batch("DELETE FROM rows"))
            .expect("clear");
    };
    let mut group = c.benchmark_group("sqlite_batch");
    group.sample_size(10);
    group.throughput(Throughput::Elements(sqlite_rows() as u64));
    group.bench_function("brisk batch writer (WAL)", |b| {
        let writer = rt.block_on(async {
            store
                .batch_writer::<(i64, String, i64)>(table("rows"))
                .max_batch_rows(10_000)
                .build()
                .expect("writer")
        });
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                clear();
                let start = Instant::now();
                rt.block_on(async {
                    let mut receipts = Vec::new();
                    for chunk in 0..sqlite_rows() / 1000 {
                        let rows = (chunk * 1000..(chunk + 1) * 1000)
                            .map(|i| (i, body(i), i * 7))
                            .collect();
                        receipts.push(writer.write(rows).await.expect("queued"));
                    }
                    for r in receipts {
                        r.await.expect("committed");
                    }
                });
                total += start.elapsed();
            }
            total
        });
    });
    group.bench_function("raw rusqlite (prepared single-row INSERT)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                clear();
                let start = Instant::now();
                rt.block_on(store.write(|conn| {
                    let tx = conn.transaction()?;
                    {
                        let mut stmt =
                            tx.prepare_cached("INSERT INTO rows (id, body, n) VALUES (?1, ?2, ?3)")?;
                        for i in 0..sqlite_rows() {
                            stmt.execute((i, body(i), i * 7))?;
                        }
                    }
                    tx.commit()
                }))
                .expect("insert");
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, db_copy_1m, db_pool_get, db_pool_fairness, sqlite_batch);
criterion_main!(benches);
