//! Query timing per normalised statement, with percentiles and a slow-query
//! log.
//
// Statements are grouped by their normalised text (string and number
// literals replaced by `?`, whitespace collapsed), so `WHERE id = 7` and
// `WHERE id = 8` are one entry. Normalising costs a pass over the SQL, so
// the raw text of recent statements is cached to its entry; with
// parameterised SQL (the usual case) the cache hit is one hash lookup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use brisk_core::StatsReport;

use crate::histogram::{Histogram, LatencySummary};

const RAW_CACHE_LIMIT: usize = 4096;
const STATEMENT_LIMIT: usize = 1024;

/// Replaces literals with `?` and collapses whitespace, so statements that
/// differ only in their constants are counted together.
///
/// ```
/// use brisk_db_pool::normalize_sql;
///
/// assert_eq!(
///     normalize_sql("SELECT *  FROM posts\n WHERE id = 42 AND author = 'bob''s' AND t > $1"),
///     "SELECT * FROM posts WHERE id = ? AND author = ? AND t > $1"
/// );
/// ```
#[must_use]
pub fn normalize_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut pending_space = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            pending_space = !out.is_empty();
            i += 1;
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        let prev_ident = out
            .as_bytes()
            .last()
            .is_some_and(|&p| p.is_ascii_alphanumeric() || p == b'_' || p == b'$');
        if c == b'\'' {
            // A string literal, with '' as an escaped quote.
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push('?');
        } else if c.is_ascii_digit() && !prev_ident {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            out.push('?');
        } else {
            let start = i;
            i += 1;
            while i < bytes.len() && !bytes[i].is_ascii() {
                i += 1;
            }
            out.push_str(&sql[start..i]);
        }
    }
    out
}

/// Settings for query statistics and the slow-query log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueryStatsConfig {
    pub(crate) slow_threshold: Duration,
    pub(crate) slow_top_n: usize,
}

impl Default for QueryStatsConfig {
    fn default() -> Self {
        Self {
            slow_threshold: Duration::from_millis(100),
            slow_top_n: 20,
        }
    }
}

/// One entry of the slow-query log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlowQuery {
    /// The normalised statement.
    pub statement: String,
    /// How long it took.
    pub elapsed: Duration,
    /// When it finished (wall clock).
    pub at: SystemTime,
}

/// Timing of one normalised statement.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatementStats {
    /// The normalised statement.
    pub statement: String,
    /// Executions that failed.
    pub errors: u64,
    /// Latency percentiles over all executions.
    pub latency: LatencySummary,
}

/// A statement's normalised text and its counters.
type Named = Arc<(String, Entry)>;

#[derive(Debug, Default)]
struct Entry {
    histogram: Histogram,
    errors: AtomicU64,
}

/// Per-statement timing, shared by a pool or store and its connections.
#[derive(Debug)]
pub(crate) struct QueryStats {
    config: QueryStatsConfig,
    raw: Mutex<HashMap<Box<str>, Named>>,
    by_statement: Mutex<HashMap<String, Named>>,
    slow: Mutex<Vec<SlowQuery>>,
    slow_total: AtomicU64,
    overflow: Named,
}

impl QueryStats {
    pub(crate) fn new(config: QueryStatsConfig) -> Self {
        Self {
            config,
            raw: Mutex::default(),
            by_statement: Mutex::default(),
            slow: Mutex::default(),
            slow_total: AtomicU64::new(0),
            overflow: Arc::new(("(other statements)".to_owned(), Entry::default())),
        }
    }

    fn entry(&self, sql: &str) -> Named {
        let mut raw = self.raw.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = raw.get(sql) {
            return Arc::clone(e);
        }
        let normal = normalize_sql(sql);
        let entry = {
            let mut by = self.by_statement.lock().unwrap_or_else(PoisonError::into_inner);
            if by.len() >= STATEMENT_LIMIT && !by.contains_key(&normal) {
                Arc::clone(&self.overflow)
            } else {
                Arc::clone(
                    by.entry(normal.clone())
                        .or_insert_with(|| Arc::new((normal, Entry::default()))),
                )
            }
        };
        if raw.len() >= RAW_CACHE_LIMIT {
            raw.clear();
        }
        raw.insert(sql.into(), Arc::clone(&entry));
        entry
    }

    /// Records one execution of `sql`.
    pub(crate) fn record(&self, sql: &str, elapsed: Duration, ok: bool) {
        let entry = self.entry(sql);
        entry.1.histogram.record(elapsed);
        if !ok {
            entry.1.errors.fetch_add(1, Ordering::Relaxed);
        }
        if elapsed >= self.config.slow_threshold && self.config.slow_top_n > 0 {
            self.slow_total.fetch_add(1, Ordering::Relaxed);
            let mut slow = self.slow.lock().unwrap_or_else(PoisonError::into_inner);
            let n = self.config.slow_top_n;
            if slow.len() < n || slow.last().is_some_and(|s| s.elapsed < elapsed) {
                let at = slow.partition_point(|s| s.elapsed >= elapsed);
                slow.insert(
                    at,
                    SlowQuery {
                        statement: entry.0.clone(),
                        elapsed,
                        at: SystemTime::now(),
                    },
                );
                slow.truncate(n);
            }
        }
    }

    pub(crate) fn slow_queries(&self) -> Vec<SlowQuery> {
        self.slow.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn slow_total(&self) -> u64 {
        self.slow_total.load(Ordering::Relaxed)
    }

    pub(crate) fn threshold(&self) -> Duration {
        self.config.slow_threshold
    }

    pub(crate) fn statements(&self) -> Vec<StatementStats> {
        let by = self.by_statement.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<StatementStats> = by
            .values()
            .chain(std::iter::once(&self.overflow))
            .filter(|e| e.1.histogram.count() > 0)
            .map(|e| StatementStats {
                statement: e.0.clone(),
                errors: e.1.errors.load(Ordering::Relaxed),
                latency: e.1.histogram.snapshot(),
            })
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.latency.count));
        all
    }

    /// Adds `brisk_db_query_*` metrics, labelled with `backend`.
    pub(crate) fn report(&self, backend: &'static str, out: &mut StatsReport) {
        for s in self.statements() {
            let statement = s.statement;
            let quantiles = [
                ("0.5", s.latency.p50),
                ("0.95", s.latency.p95),
                ("0.99", s.latency.p99),
            ];
            for (q, d) in quantiles {
                let _ = out
                    .gauge(
                        "brisk_db_query_seconds",
                        "Query latency by statement",
                        d.as_secs_f64(),
                    )
                    .label("backend", backend)
                    .label("statement", statement.clone())
                    .label("quantile", q);
            }
            let _ = out
                .counter(
                    "brisk_db_query_total",
                    "Queries executed by statement",
                    s.latency.count,
                )
                .label("backend", backend)
                .label("statement", statement.clone());
            let _ = out
                .counter(
                    "brisk_db_query_errors_total",
                    "Failed queries by statement",
                    s.errors,
                )
                .label("backend", backend)
                .label("statement", statement);
        }
        let _ = out
            .counter(
                "brisk_db_slow_queries_total",
                "Queries slower than the slow-query threshold",
                self.slow_total(),
            )
            .label("backend", backend);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_literals_and_whitespace() {
        assert_eq!(normalize_sql("select  1"), "select ?");
        assert_eq!(normalize_sql("SELECT pg_sleep(0.25)"), "SELECT pg_sleep(?)");
        assert_eq!(
            normalize_sql("INSERT INTO t2 (a) VALUES ($1)"),
            "INSERT INTO t2 (a) VALUES ($1)"
        );
        assert_eq!(normalize_sql("x = 'é''s' "), "x = ?");
        assert_eq!(normalize_sql("naïve = 3"), "naïve = ?");
    }

    #[test]
    fn slow_log_keeps_the_top_n() {
        let stats = QueryStats::new(QueryStatsConfig {
            slow_threshold: Duration::from_millis(10),
            slow_top_n: 2,
        });
        for ms in [5u64, 30, 12, 50, 11] {
            stats.record(&format!("SELECT {ms}"), Duration::from_millis(ms), true);
        }
        let slow = stats.slow_queries();
        assert_eq!(slow.len(), 2);
        assert_eq!(slow[0].elapsed, Duration::from_millis(50));
        assert_eq!(slow[1].elapsed, Duration::from_millis(30));
        assert_eq!(slow[0].statement, "SELECT ?");
        assert_eq!(stats.slow_total(), 4);
        let all = stats.statements();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].latency.count, 5);
    }
}
