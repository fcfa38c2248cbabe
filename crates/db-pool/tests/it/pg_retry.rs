//! Retry classification against real errors: a serialization failure
//! (40001) and a deadlock (40P01), retried by `transaction_with_retry`.

use std::time::Duration;

use brisk_core::Backoff;
use brisk_db_pool::tokio_postgres::{self, NoTls};
use brisk_db_pool::{Error, PgPool, RetryClass};

async fn setup(url: &str) -> PgPool {
    let pool = PgPool::builder()
        .url(url)
        .max_size(4)
        .min_idle(2)
        .retry(
            Backoff::builder()
                .base(Duration::from_millis(5))
                .cap(Duration::from_millis(200))
                .max_attempts(30)
                .build()
                .unwrap(),
        )
        .build()
        .await
        .expect("pool");
    pool.batch_execute(
        "CREATE TABLE acc (id int PRIMARY KEY, v int NOT NULL); INSERT INTO acc VALUES (1, 0), (2, 0)",
    )
    .await
    .unwrap();
    pool
}

async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// Write skew under SERIALIZABLE: `other` reads row 1 and writes row 2 and
/// commits while the transaction under test reads row 2 and writes row 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_serialization_failure_is_retried() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = setup(db.url()).await;

    // First without retries: the error is 40001, class RetryTransaction.
    let other = raw(db.url()).await;
    {
        let mut conn = pool.get().await.unwrap();
        let tx = conn.transaction().await.unwrap();
        tx.batch_execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .await
            .unwrap();
        tx.query("SELECT v FROM acc WHERE id = 2", &[]).await.unwrap();
        other
            .batch_execute(
                "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT v FROM acc WHERE id = 1; \
             UPDATE acc SET v = v + 1 WHERE id = 2; COMMIT",
            )
            .await
            .unwrap();
        let err = match tx.execute("UPDATE acc SET v = v + 1 WHERE id = 1", &[]).await {
            Err(e) => e,
            Ok(_) => tx.commit().await.expect_err("write skew must fail"),
        };
        assert_eq!(err.sqlstate(), Some("40001"), "{err}");
        assert_eq!(err.retry_class(), RetryClass::RetryTransaction);
    }

    // Then through transaction_with_retry: attempt 1 fails the same way, attempt 2 commits.
    let mut attempts = 0;
    let other = &other;
    let v: i32 = pool
        .transaction_with_retry(async |tx| {
            attempts += 1;
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                .await?;
            tx.query("SELECT v FROM acc WHERE id = 2", &[]).await?;
            if attempts == 1 {
                other
                    .batch_execute(
                        "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT v FROM acc WHERE id = 1; \
                         UPDATE acc SET v = v + 1 WHERE id = 2; COMMIT",
                    )
                    .await
                    .expect("the other transaction");
            }
            tx.execute("UPDATE acc SET v = v + 1 WHERE id = 1", &[]).await?;
            Ok(tx.query_one("SELECT v FROM acc WHERE id = 1", &[]).await?.get(0))
        })
        .await
        .expect("retried to success");
    assert_eq!(attempts, 2);
    assert_eq!(v, 1);
    assert!(pool.stats().retries >= 1);
    let row2: i32 = pool
        .query_one("SELECT v FROM acc WHERE id = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(row2, 2);
}

/// Two transactions lock rows 1 and 2 in opposite orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_deadlock_is_retried() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = setup(db.url()).await;
    let mut attempts = 0;
    let mut first_error = None;
    let url = db.url().to_owned();
    let result = pool
        .transaction_with_retry(async |tx| {
            attempts += 1;
            // This side detects the deadlock first, so it is the victim.
            tx.batch_execute("SET LOCAL deadlock_timeout = '50ms'").await?;
            tx.execute("UPDATE acc SET v = v + 10 WHERE id = 2", &[]).await?;
            if attempts == 1 {
                let other = raw(&url).await;
                other
                    .batch_execute(
                        "BEGIN; SET LOCAL deadlock_timeout = '10s'; UPDATE acc SET v = v + 100 WHERE id = 1",
                    )
                    .await
                    .expect("lock row 1");
                // Blocks on our row 2 until we are rolled back.
                tokio::spawn(async move {
                    other
                        .batch_execute("UPDATE acc SET v = v + 100 WHERE id = 2; COMMIT")
                        .await
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            match tx.execute("UPDATE acc SET v = v + 10 WHERE id = 1", &[]).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    first_error.get_or_insert((e.sqlstate().map(str::to_owned), e.retry_class()));
                    Err(e)
                }
            }
        })
        .await;
    result.expect("retried to success");
    assert_eq!(attempts, 2);
    assert_eq!(
        first_error,
        Some((Some("40P01".to_owned()), RetryClass::RetryTransaction))
    );
    // Both transactions committed in the end: 100 + 10 on each row.
    let rows: Vec<i32> = pool
        .query("SELECT v FROM acc ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, [110, 110]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_retry_errors_are_returned_at_once() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = setup(db.url()).await;
    let mut attempts = 0;
    let err = pool
        .transaction_with_retry(async |tx| {
            attempts += 1;
            tx.execute("INSERT INTO acc VALUES (1, 0)", &[]).await?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(attempts, 1);
    assert_eq!(err.sqlstate(), Some("23505"));
    assert!(matches!(
        err,
        Error::Database {
            class: RetryClass::Never,
            ..
        }
    ));
}

/// `transaction_with_retry` futures are `Send`: they run on spawned tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_transactions_run_on_spawned_tasks() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let pool = setup(db.url()).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.transaction_with_retry(async |tx| {
                    tx.batch_execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                        .await?;
                    let v: i32 = tx.query_one("SELECT v FROM acc WHERE id = 1", &[]).await?.get(0);
                    tx.execute("UPDATE acc SET v = $1 WHERE id = 1", &[&(v + 1)])
                        .await?;
                    Ok(())
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("committed, retried as needed");
    }
    // Serializable + retries: no lost update.
    let v: i32 = pool
        .query_one("SELECT v FROM acc WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 8);
}
