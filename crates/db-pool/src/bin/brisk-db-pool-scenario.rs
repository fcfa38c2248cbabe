//! Scenario runner for brisk-db-pool's own integration tests (`tests/it`),
//! and for nothing else: a crate that depends on the library never builds
//! it.
//!
//! A crash cannot be simulated inside the test process, so the test runs
//! this as a child:
//!
//! ```text
//! brisk-db-pool-scenario sqlite-crash <path>
//! ```
//!
//! It opens the SQLite database at `<path>`, creates the table `crash(id
//! INTEGER NOT NULL, text TEXT NOT NULL)`, and writes batches of 100 rows
//! through a batch writer, printing `ACK <first id> <last id>` for each
//! acknowledged batch. After 20 acknowledgements it queues one more batch
//! and aborts the process while that batch is in flight: the test then
//! reopens the database and checks that every acknowledged row is there.

use std::io::Write;

use brisk_db_pool::{ColumnType, SqliteStore, Table};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["sqlite-crash", path] => sqlite_crash(path),
        other => panic!("usage: brisk-db-pool-scenario sqlite-crash <path> (got {other:?})"),
    }
}

fn sqlite_crash(path: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let store = SqliteStore::open(path).expect("open the database");
        store
            .execute_batch("CREATE TABLE IF NOT EXISTS crash (id INTEGER NOT NULL, text TEXT NOT NULL)")
            .await
            .expect("create the table");
        let table = Table::builder("crash")
            .column("id", ColumnType::Int8)
            .column("text", ColumnType::Text)
            .build()
            .expect("table");
        let writer = store
            .batch_writer::<(i64, String)>(table)
            .build()
            .expect("writer");
        let mut stdout = std::io::stdout().lock();
        for batch in 0..21i64 {
            let rows: Vec<(i64, String)> = (batch * 100..batch * 100 + 100)
                .map(|id| (id, format!("row {id}")))
                .collect();
            let receipt = writer.write(rows).await.expect("queue a batch");
            if batch == 20 {
                // The last batch is in flight: crash now.
                tokio::task::yield_now().await;
                std::process::abort();
            }
            receipt.await.expect("batch committed");
            writeln!(stdout, "ACK {} {}", batch * 100, batch * 100 + 99).expect("stdout");
            stdout.flush().expect("stdout");
        }
    });
}
