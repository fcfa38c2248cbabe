//! Ingests posts into a database through brisk-db-pool's batch writer and
//! prints what the store saw.
//!
//! ```text
//! cargo run -p brisk-examples --example db_pool_ingest                          # SQLite at ./data/brisk.db
//! DATABASE_URL=postgres://user@host/db cargo run -p brisk-examples --example db_pool_ingest
//! cargo run -p brisk-examples --example db_pool_ingest -- sqlite:///tmp/x.db 5000
//! ```
//!
//! Arguments: an optional database URL (default: `DATABASE_URL`, else the
//! embedded SQLite file) and a number of posts (default 1,000). It applies
//! the migrations for the backend it finds (SQL embedded from
//! `examples/migrations/<dialect>/`), writes the posts in batches with
//! `ON CONFLICT DO NOTHING` (so running it twice adds nothing), and prints
//! the row count, the batches and the slowest statements.

use std::process::ExitCode;

use brisk_core::{Post, SystemClock, Timestamp};
use brisk_db_pool::{ColumnType, Dialect, Error, Migrations, Store, Table, WriteMode};

fn migrations() -> Result<Migrations, Error> {
    Ok(Migrations::builder()
        .file(
            Dialect::Postgres,
            "0001_create_posts.sql",
            include_str!("../migrations/postgres/0001_create_posts.sql"),
        )
        .file(
            Dialect::Sqlite,
            "0001_create_posts.sql",
            include_str!("../migrations/sqlite/0001_create_posts.sql"),
        )
        .build()?)
}

fn posts_table() -> Result<Table, Error> {
    Ok(Table::builder("posts")
        .column("id", ColumnType::Text)
        .column("author", ColumnType::Text)
        .column("text", ColumnType::Text)
        .column("created_at", ColumnType::Timestamptz)
        .key(["id"])
        .build()?)
}

fn sample_posts(n: usize, now: Timestamp) -> Vec<Post> {
    (0..n)
        .map(|i| {
            Post::new(format!("p{i}"), format!("post {i} about $ABC"), now)
                .with_author(format!("@user{}", i % 17))
        })
        .collect()
}

/// Migrates, writes `posts` in batches of 250, and returns the report lines.
async fn ingest(store: &Store, posts: Vec<Post>) -> Result<Vec<String>, Error> {
    let report = store.migrate(&migrations()?).await?;
    let writer = store
        .batch_writer::<(String, String, String, Timestamp)>(posts_table()?)
        .mode(WriteMode::InsertIgnore)
        .max_batch_rows(250)
        .build()?;
    let mut receipts = Vec::new();
    for chunk in posts.chunks(100) {
        let rows = chunk
            .iter()
            .map(|p| (p.id.clone(), p.author.clone(), p.text.clone(), p.created_at))
            .collect();
        receipts.push(writer.write(rows).await?);
    }
    let mut batches = std::collections::BTreeSet::new();
    for r in receipts {
        batches.insert(r.await?.batch);
    }
    let rows = store.query_i64("SELECT count(*) FROM posts").await?;
    let stats = writer.stats();
    Ok(vec![
        format!(
            "backend: {:?}; migrations applied now: {:?}",
            store.backend(),
            report.applied
        ),
        format!(
            "wrote {} posts in {} batches; the table has {rows} rows",
            stats.rows_written,
            batches.len()
        ),
        format!(
            "batch commit p50 {:?}, p99 {:?}",
            stats.batch_latency.p50, stats.batch_latency.p99
        ),
    ])
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| "sqlite://".to_owned());
    let n = match args.next().map(|a| a.parse::<usize>()) {
        None => 1000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("db_pool_ingest: the number of posts must be a whole number: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("db_pool_ingest: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let store = Store::connect(&url).await?;
        ingest(&store, sample_posts(n, Timestamp::now(&SystemClock))).await
    });
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("db_pool_ingest: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn twice(store: &Store) {
        let posts = sample_posts(600, Timestamp::from_unix_millis(1_795_343_400_000));
        let first = ingest(store, posts.clone()).await.expect("first run");
        assert!(first[0].ends_with("migrations applied now: [1]"), "{first:?}");
        assert!(
            first[1].starts_with("wrote 600 posts in ") && first[1].ends_with("the table has 600 rows"),
            "{first:?}"
        );
        let second = ingest(store, posts).await.expect("second run");
        assert!(second[0].ends_with("migrations applied now: []"), "{second:?}");
        assert!(
            second[1].ends_with("the table has 600 rows"),
            "idempotent: {second:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ingests_into_sqlite_idempotently() {
        let dir = std::env::temp_dir().join(format!("brisk-example-db-pool-{}", std::process::id()));
        let store = Store::connect(&format!("sqlite://{}/posts.db", dir.display()))
            .await
            .expect("open");
        twice(&store).await;
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ingests_into_postgres_idempotently() {
        let Some(db) = brisk_testkit::postgres() else {
            return;
        };
        let store = Store::connect(db.url()).await.expect("connect");
        twice(&store).await;
    }

    #[tokio::test]
    async fn a_bad_url_is_an_error() {
        let err = Store::connect("mongodb://x/y").await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown database URL scheme \"mongodb\""),
            "{err}"
        );
    }
}
