//! A blocking one-shot PostgreSQL client over tokio-postgres.
//!
//! Each call connects, runs one simple query and disconnects, on its own
//! thread with its own current-thread runtime. That makes it callable from
//! plain `#[test]` functions and from inside a `#[tokio::test]` alike:
//! blocking on a runtime from within another runtime's thread would panic,
//! blocking on a fresh thread does not. The cost (a thread, a runtime, a
//! connection: about a millisecond on loopback) is paid only when a test
//! database is created or dropped.

use std::time::{Duration, Instant};

use tokio_postgres::{NoTls, SimpleQueryMessage};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Runs `sql` (one or more statements) on the server at `url` and returns
/// the first column of every row, `None` for SQL `NULL`. Gives up after
/// `timeout`.
pub(crate) fn simple_query(url: &str, sql: &str, timeout: Duration) -> Result<Vec<Option<String>>, BoxError> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(timeout);
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    match tokio::time::timeout(timeout, run(&config, sql)).await {
                        Ok(result) => result,
                        Err(_) => Err(format!("no answer within {timeout:?}").into()),
                    }
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the query thread panicked".into()))
    })
}

async fn run(config: &tokio_postgres::Config, sql: &str) -> Result<Vec<Option<String>>, BoxError> {
    let (client, connection) = config.connect(NoTls).await?;
    let connection = tokio::spawn(connection);
    let messages = client.simple_query(sql).await;
    drop(client);
    // The connection task ends once the client is gone; wait for it so the
    // session is closed (not just abandoned) before we return.
    let _ = connection.await;
    Ok(messages?
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
            _ => None,
        })
        .collect())
}

/// Retries `SELECT 1` against `url` until it succeeds or `timeout` passes;
/// returns the last error on timeout.
pub(crate) fn wait_ready(url: &str, timeout: Duration) -> Result<(), BoxError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match simple_query(
            url,
            "SELECT 1",
            left.clamp(Duration::from_millis(100), Duration::from_secs(2)),
        ) {
            Ok(_) => return Ok(()),
            Err(err) if Instant::now() >= deadline => return Err(err),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
