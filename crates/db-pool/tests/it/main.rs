//! brisk-db-pool's integration tests, through the public API.
//!
//! PostgreSQL tests run against real throwaway servers from brisk-testkit
//! (and skip themselves under `BRISK_SKIP_SERVICES=1`); SQLite tests run
//! anywhere. The SQLite crash test runs the crate's
//! `brisk-db-pool-scenario` binary as a child process and aborts it
//! mid-batch.

#[cfg(feature = "postgres")]
mod pg_batch;
#[cfg(feature = "postgres")]
mod pg_migrate;
#[cfg(feature = "postgres")]
mod pg_pool;
#[cfg(feature = "postgres")]
mod pg_retry;
mod sqlite;
mod store;

use brisk_db_pool::{Dialect, Migrations};

/// The same schema in both dialects.
fn migrations() -> Migrations {
    Migrations::builder()
        .file(
            Dialect::Postgres,
            "0001_create_posts.sql",
            "CREATE TABLE posts (id bigint PRIMARY KEY, author text NOT NULL, body text NOT NULL)",
        )
        .file(
            Dialect::Postgres,
            "0002_index_author.sql",
            "CREATE INDEX posts_author ON posts (author, id)",
        )
        .file(
            Dialect::Sqlite,
            "0001_create_posts.sql",
            "CREATE TABLE posts (id INTEGER PRIMARY KEY, author TEXT NOT NULL, body TEXT NOT NULL)",
        )
        .file(
            Dialect::Sqlite,
            "0002_index_author.sql",
            "CREATE INDEX posts_author ON posts (author, id)",
        )
        .build()
        .expect("valid migrations")
}

/// A fresh directory for one test's SQLite files, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let n = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "brisk-db-pool-{name}-{}-{}-{}",
            std::process::id(),
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            fastrand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn path(&self, file: &str) -> std::path::PathBuf {
        self.0.join(file)
    }
}

fn fastrand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
