//! The database: schema, batch writers for posts and alerts, and the
//! keyset-paginated reads. Every statement is parameterised.

use std::time::Duration;

use brisk_core::{Engagement, Post, Timestamp};
use brisk_db_pool::rusqlite::{self, params_from_iter, types::Value as SqlValue};
use brisk_db_pool::tokio_postgres::types::ToSql;
use brisk_db_pool::{
    BatchRow, BatchWriter, ColumnType, Dialect, Migrations, Store, Table, ValueRef, WriteMode,
};
use serde::Serialize;

/// The schema, embedded.
pub(crate) fn migrations() -> Result<Migrations, brisk_core::ConfigError> {
    Migrations::builder()
        .file(
            Dialect::Sqlite,
            "0001_posts_and_alerts.sql",
            include_str!("../migrations/sqlite/0001_posts_and_alerts.sql"),
        )
        .file(
            Dialect::Postgres,
            "0001_posts_and_alerts.sql",
            include_str!("../migrations/postgres/0001_posts_and_alerts.sql"),
        )
        .file(
            Dialect::Sqlite,
            "0002_byte_keys_and_unused_index.sql",
            include_str!("../migrations/sqlite/0002_byte_keys_and_unused_index.sql"),
        )
        .file(
            Dialect::Postgres,
            "0002_byte_keys_and_unused_index.sql",
            include_str!("../migrations/postgres/0002_byte_keys_and_unused_index.sql"),
        )
        .build()
}

/// A post as stored.
#[derive(Clone, Debug)]
pub(crate) struct PostRow {
    pub(crate) post: Post,
    pub(crate) ingested_at: i64,
}

fn opt_i64(v: Option<u64>) -> ValueRef<'static> {
    v.map_or(ValueRef::Null, |n| {
        ValueRef::I64(i64::try_from(n).unwrap_or(i64::MAX))
    })
}

impl BatchRow for PostRow {
    fn len(&self) -> usize {
        11
    }

    fn value(&self, index: usize) -> ValueRef<'_> {
        let p = &self.post;
        let e = p.engagement;
        match index {
            0 => ValueRef::Text(&p.id),
            1 => ValueRef::Text(&p.text),
            2 => ValueRef::Text(&p.author),
            3 => ValueRef::Text(&p.source),
            4 => ValueRef::I64(p.created_at.as_unix_millis()),
            5 => p.language.as_deref().map_or(ValueRef::Null, ValueRef::Text),
            6 => opt_i64(e.map(|e| e.likes)),
            7 => opt_i64(e.map(|e| e.reposts)),
            8 => opt_i64(e.map(|e| e.replies)),
            9 => opt_i64(e.map(|e| e.views)),
            _ => ValueRef::I64(self.ingested_at),
        }
    }
}

pub(crate) fn posts_table() -> Table {
    Table::builder("posts")
        .column("id", ColumnType::Text)
        .column("text", ColumnType::Text)
        .column("author", ColumnType::Text)
        .column("source", ColumnType::Text)
        .column("created_at", ColumnType::Int8)
        .column("language", ColumnType::Text)
        .column("likes", ColumnType::Int8)
        .column("reposts", ColumnType::Int8)
        .column("replies", ColumnType::Int8)
        .column("views", ColumnType::Int8)
        .column("ingested_at", ColumnType::Int8)
        .key(["id"])
        .build()
        .expect("the posts table is well formed")
}

/// An alert as stored and returned.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct AlertRow {
    /// The row id (absent before it is written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<i64>,
    pub(crate) post_id: String,
    pub(crate) entity: String,
    pub(crate) confidence: f64,
    pub(crate) score: f64,
    pub(crate) created_at: Timestamp,
    pub(crate) raised_at: Timestamp,
    pub(crate) text: String,
    pub(crate) signals: Box<serde_json::value::RawValue>,
}

impl BatchRow for AlertRow {
    fn len(&self) -> usize {
        8
    }

    fn value(&self, index: usize) -> ValueRef<'_> {
        match index {
            0 => ValueRef::Text(&self.post_id),
            1 => ValueRef::Text(&self.entity),
            2 => ValueRef::F64(self.confidence),
            3 => ValueRef::F64(self.score),
            4 => ValueRef::I64(self.created_at.as_unix_millis()),
            5 => ValueRef::I64(self.raised_at.as_unix_millis()),
            6 => ValueRef::Text(&self.text),
            _ => ValueRef::Text(self.signals.get()),
        }
    }
}

pub(crate) fn alerts_table() -> Table {
    Table::builder("alerts")
        .column("post_id", ColumnType::Text)
        .column("entity", ColumnType::Text)
        .column("confidence", ColumnType::Float8)
        .column("score", ColumnType::Float8)
        .column("created_at", ColumnType::Int8)
        .column("raised_at", ColumnType::Int8)
        .column("text", ColumnType::Text)
        .column("signals", ColumnType::Text)
        .key(["post_id", "entity"])
        .build()
        .expect("the alerts table is well formed")
}

/// The two writers: rows are acknowledged only after their batch commits;
/// a post or alert written twice (same key) is kept once.
pub(crate) fn writers(
    store: &Store,
) -> Result<(BatchWriter<PostRow>, BatchWriter<AlertRow>), brisk_db_pool::Error> {
    let posts = store
        .batch_writer::<PostRow>(posts_table())
        .mode(WriteMode::InsertIgnore)
        .max_batch_rows(5_000)
        .flush_interval(Duration::from_millis(2))
        .queue_rows(50_000)
        .build()?;
    let alerts = store
        .batch_writer::<AlertRow>(alerts_table())
        .mode(WriteMode::InsertIgnore)
        .max_batch_rows(5_000)
        .flush_interval(Duration::from_millis(2))
        .queue_rows(50_000)
        .build()?;
    Ok((posts, alerts))
}

/// A query argument, bound as a parameter on either backend.
#[derive(Clone, Debug)]
enum Arg {
    Int(i64),
    Real(f64),
    Text(String),
}

/// A statement built with placeholders for the store's dialect (`?` for
/// SQLite, `$n` for PostgreSQL) and its arguments. Only our own SQL text
/// goes into `sql`; every value a client sends is an argument.
#[derive(Debug)]
struct Query {
    sql: String,
    args: Vec<Arg>,
    postgres: bool,
}

impl Query {
    fn new(store: &Store, sql: &str) -> Self {
        Self {
            sql: sql.to_owned(),
            args: Vec::new(),
            postgres: store.as_postgres().is_some(),
        }
    }

    /// Appends `sql` with `{}` replaced by the next placeholder, and its argument.
    fn push(&mut self, sql: &str, arg: Arg) {
        self.args.push(arg);
        let mark = if self.postgres {
            format!("${}", self.args.len())
        } else {
            "?".to_owned()
        };
        self.sql.push_str(&sql.replace("{}", &mark));
    }

    /// The keyset condition `(created_at, id) < (at, id)`, newest first.
    fn before(&mut self, at: i64, id: Arg) {
        self.push(" AND (created_at < {}", Arg::Int(at));
        self.push(" OR (created_at = {}", Arg::Int(at));
        self.push(" AND id < {}))", id);
    }

    fn sqlite_args(&self) -> Vec<SqlValue> {
        self.args
            .iter()
            .map(|a| match a {
                Arg::Int(i) => SqlValue::Integer(*i),
                Arg::Real(r) => SqlValue::Real(*r),
                Arg::Text(t) => SqlValue::Text(t.clone()),
            })
            .collect()
    }

    fn pg_args(&self) -> Vec<Box<dyn ToSql + Sync + Send>> {
        self.args
            .iter()
            .map(|a| -> Box<dyn ToSql + Sync + Send> {
                match a {
                    Arg::Int(i) => Box::new(*i),
                    Arg::Real(r) => Box::new(*r),
                    Arg::Text(t) => Box::new(t.clone()),
                }
            })
            .collect()
    }
}

/// One row, from either backend, read by column index.
trait RowGet {
    fn int(&self, i: usize) -> Result<i64, DbError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError>;
    fn real(&self, i: usize) -> Result<f64, DbError>;
    fn text(&self, i: usize) -> Result<String, DbError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, DbError>;
}

/// A read failed: in the database, or decoding a row (a bug: the schema
/// and the code disagree).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error(transparent)]
    Db(#[from] brisk_db_pool::Error),
    #[error("column {column}: {reason}")]
    Decode { column: usize, reason: String },
}

fn decode_error(column: usize, e: impl std::fmt::Display) -> DbError {
    DbError::Decode {
        column,
        reason: e.to_string(),
    }
}

impl RowGet for brisk_db_pool::tokio_postgres::Row {
    fn int(&self, i: usize) -> Result<i64, DbError> {
        self.try_get(i).map_err(|e| decode_error(i, e))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        self.try_get(i).map_err(|e| decode_error(i, e))
    }
    fn real(&self, i: usize) -> Result<f64, DbError> {
        self.try_get(i).map_err(|e| decode_error(i, e))
    }
    fn text(&self, i: usize) -> Result<String, DbError> {
        self.try_get(i).map_err(|e| decode_error(i, e))
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        self.try_get(i).map_err(|e| decode_error(i, e))
    }
}

/// An SQLite row copied out of its statement (rows cannot leave the
/// blocking closure that reads them).
struct SqliteRow(Vec<SqlValue>);

impl RowGet for SqliteRow {
    fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?.ok_or_else(|| decode_error(i, "NULL"))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.0.get(i) {
            Some(SqlValue::Integer(v)) => Ok(Some(*v)),
            Some(SqlValue::Null) => Ok(None),
            other => Err(decode_error(i, format!("{other:?} is not an integer"))),
        }
    }
    fn real(&self, i: usize) -> Result<f64, DbError> {
        match self.0.get(i) {
            Some(SqlValue::Real(v)) => Ok(*v),
            #[allow(clippy::cast_precision_loss)]
            Some(SqlValue::Integer(v)) => Ok(*v as f64),
            other => Err(decode_error(i, format!("{other:?} is not a number"))),
        }
    }
    fn text(&self, i: usize) -> Result<String, DbError> {
        self.opt_text(i)?.ok_or_else(|| decode_error(i, "NULL"))
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.0.get(i) {
            Some(SqlValue::Text(v)) => Ok(Some(v.clone())),
            Some(SqlValue::Null) => Ok(None),
            other => Err(decode_error(i, format!("{other:?} is not text"))),
        }
    }
}

/// Runs `q` and maps each row with `map`.
async fn fetch<T: Send + 'static>(
    store: &Store,
    q: Query,
    map: fn(&dyn RowGet) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    if let Some(pg) = store.as_postgres() {
        let args = q.pg_args();
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows = pg.query(&q.sql, &refs).await?;
        return rows.iter().map(|r| map(r)).collect();
    }
    let Some(sqlite) = store.as_sqlite() else {
        return Err(brisk_db_pool::Error::Closed { what: "store" }.into());
    };
    let args = q.sqlite_args();
    let sql = q.sql;
    let rows = sqlite
        .read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let width = stmt.column_count();
            let rows = stmt.query_map(params_from_iter(args), |r| {
                (0..width)
                    .map(|i| r.get::<_, SqlValue>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await?;
    rows.into_iter().map(|r| map(&SqliteRow(r))).collect()
}

/// The filters of `GET /api/posts`.
#[derive(Clone, Debug, Default)]
pub(crate) struct PostQuery {
    pub(crate) since: Option<i64>,
    pub(crate) until: Option<i64>,
    pub(crate) author: Option<String>,
    pub(crate) limit: usize,
    /// The last row of the previous page: (`created_at`, `id`).
    pub(crate) after: Option<(i64, String)>,
}

/// A post as returned by the API.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PostOut {
    pub(crate) id: String,
    pub(crate) text: String,
    pub(crate) author: String,
    pub(crate) source: String,
    pub(crate) created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) engagement: Option<Engagement>,
    pub(crate) ingested_at: Timestamp,
}

const POST_COLUMNS: &str = "SELECT id, text, author, source, created_at, language, likes, reposts, replies, views, ingested_at FROM posts";

fn post_out(r: &dyn RowGet) -> Result<PostOut, DbError> {
    let counts = [r.opt_int(6)?, r.opt_int(7)?, r.opt_int(8)?, r.opt_int(9)?];
    let n = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    let engagement = counts
        .iter()
        .any(Option::is_some)
        .then(|| Engagement::new(n(counts[0]), n(counts[1]), n(counts[2]), n(counts[3])));
    Ok(PostOut {
        id: r.text(0)?,
        text: r.text(1)?,
        author: r.text(2)?,
        source: r.text(3)?,
        created_at: Timestamp::from_unix_millis(r.int(4)?),
        language: r.opt_text(5)?,
        engagement,
        ingested_at: Timestamp::from_unix_millis(r.int(10)?),
    })
}

/// Newest first; `limit + 1` rows are read to know whether a next page
/// exists. Served by `posts_created`, or `posts_author_created` with an author.
pub(crate) async fn list_posts(store: &Store, f: PostQuery) -> Result<Vec<PostOut>, DbError> {
    let mut q = Query::new(store, POST_COLUMNS);
    q.sql.push_str(" WHERE 1 = 1");
    if let Some(author) = f.author {
        q.push(" AND author = {}", Arg::Text(author));
    }
    if let Some(since) = f.since {
        q.push(" AND created_at >= {}", Arg::Int(since));
    }
    if let Some(until) = f.until {
        q.push(" AND created_at < {}", Arg::Int(until));
    }
    if let Some((at, id)) = f.after {
        q.before(at, Arg::Text(id));
    }
    q.push(
        " ORDER BY created_at DESC, id DESC LIMIT {}",
        Arg::Int(i64::try_from(f.limit + 1).unwrap_or(i64::MAX)),
    );
    fetch(store, q, post_out).await
}

/// The filters of `GET /api/alerts`.
#[derive(Clone, Debug, Default)]
pub(crate) struct AlertQuery {
    pub(crate) entity: Option<String>,
    pub(crate) min_confidence: Option<f64>,
    pub(crate) since: Option<i64>,
    pub(crate) limit: usize,
    /// The last row of the previous page: (`created_at`, `id`).
    pub(crate) after: Option<(i64, i64)>,
}

fn alert_out(r: &dyn RowGet) -> Result<AlertRow, DbError> {
    let signals = serde_json::value::RawValue::from_string(r.text(8)?).map_err(|e| decode_error(8, e))?;
    Ok(AlertRow {
        id: Some(r.int(0)?),
        post_id: r.text(1)?,
        entity: r.text(2)?,
        confidence: r.real(3)?,
        score: r.real(4)?,
        created_at: Timestamp::from_unix_millis(r.int(5)?),
        raised_at: Timestamp::from_unix_millis(r.int(6)?),
        text: r.text(7)?,
        signals,
    })
}

/// Newest first, through `alerts_entity_created` (with an entity) or
/// `alerts_created`; `limit + 1` rows.
pub(crate) async fn list_alerts(store: &Store, f: AlertQuery) -> Result<Vec<AlertRow>, DbError> {
    let mut q = Query::new(
        store,
        "SELECT id, post_id, entity, confidence, score, created_at, raised_at, text, signals FROM alerts WHERE 1 = 1",
    );
    if let Some(entity) = f.entity {
        q.push(" AND entity = {}", Arg::Text(entity));
    }
    if let Some(since) = f.since {
        q.push(" AND created_at >= {}", Arg::Int(since));
    }
    if let Some(min) = f.min_confidence {
        q.push(" AND confidence >= {}", Arg::Real(min));
    }
    if let Some((at, id)) = f.after {
        q.before(at, Arg::Int(id));
    }
    q.push(
        " ORDER BY created_at DESC, id DESC LIMIT {}",
        Arg::Int(i64::try_from(f.limit + 1).unwrap_or(i64::MAX)),
    );
    fetch(store, q, alert_out).await
}

/// Rows in a table (the table name is one of ours, never the caller's).
pub(crate) async fn count(store: &Store, table: &'static str) -> Result<i64, DbError> {
    Ok(store.query_i64(&format!("SELECT count(*) FROM {table}")).await?)
}

fn corpus_post(r: &dyn RowGet) -> Result<Post, DbError> {
    let n = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    Ok(
        Post::new(r.text(0)?, r.text(1)?, Timestamp::from_unix_millis(r.int(4)?))
            .with_author(r.text(2)?)
            .with_source(r.text(3)?)
            .with_engagement(Engagement::new(
                n(r.opt_int(6)?),
                n(r.opt_int(7)?),
                n(r.opt_int(8)?),
                n(r.opt_int(9)?),
            )),
    )
}

/// The newest `limit` posts, as `Post`s (to train the generator on).
pub(crate) async fn recent_posts(store: &Store, limit: usize) -> Result<Vec<Post>, DbError> {
    let mut q = Query::new(store, POST_COLUMNS);
    q.push(
        " ORDER BY created_at DESC, id DESC LIMIT {}",
        Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
    );
    fetch(store, q, corpus_post).await
}

/// The store's slow-query log, statement statistics and slow threshold.
pub(crate) fn query_log(
    store: &Store,
) -> (
    Vec<brisk_db_pool::SlowQuery>,
    Vec<brisk_db_pool::StatementStats>,
    Duration,
) {
    if let Some(pg) = store.as_postgres() {
        return (pg.slow_queries(), pg.query_stats(), pg.slow_query_threshold());
    }
    match store.as_sqlite() {
        Some(s) => (s.slow_queries(), s.query_stats(), s.slow_query_threshold()),
        None => (Vec::new(), Vec::new(), Duration::ZERO),
    }
}
