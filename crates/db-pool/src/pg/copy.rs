//! The PostgreSQL side of the batch writer: binary `COPY`, `COPY` into a
//! temporary table then merge, and `UNNEST` upserts and updates.
//
// Every batch is one transaction, acknowledged only after `COMMIT` returns.
// When batches overlap in order (`parallel_batches(1)`, see writer.rs), a
// batch runs everything up to `COMMIT`, then waits at its `CommitGate` for
// the batch before it; if that one failed an attempt, this one rolls back
// and gives way instead of committing.
// `Copy` streams rows with `BinaryCopyInWriter` straight into the table;
// `InsertIgnore` streams them into a per-connection temporary table
// (`ON COMMIT DELETE ROWS`, created once per connection) and merges with
// `ON CONFLICT (key) DO NOTHING`, so a batch retried after an unknown
// `COMMIT` outcome adds nothing twice; `Upsert` and `Update` send one array
// parameter per column and let `UNNEST` turn them back into rows: one
// statement, one round trip, whatever the batch size.
//
// Why an encoder of our own instead of `BinaryCopyInWriter`: that writer
// hands the connection a 4 KiB chunk at a time, each through a channel of
// capacity one to the connection task, so a million short rows are ~12,000
// task hand-offs (on a busy 2-core machine, a context switch each). This
// one writes the same binary COPY format into 256 KiB chunks: the client
// encodes the next chunk while the connection task sends the last, and the
// server gets large `CopyData` messages.

use std::borrow::Cow;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::types::{IsNull, ToSql, Type};

use crate::table::quote_ident;
use crate::writer::{Attempt, CommitGate};
use crate::{BatchRow, ColumnType, Error, PgPool, Table, ValueRef, WriteMode};

fn pg_type(ty: ColumnType) -> Type {
    match ty {
        ColumnType::Bool => Type::BOOL,
        ColumnType::Int4 => Type::INT4,
        ColumnType::Int8 => Type::INT8,
        ColumnType::Float8 => Type::FLOAT8,
        ColumnType::Text => Type::TEXT,
        ColumnType::Bytea => Type::BYTEA,
        ColumnType::Timestamptz => Type::TIMESTAMPTZ,
    }
}

#[derive(Debug)]
pub(crate) struct PgSink {
    pool: PgPool,
    mode: WriteMode,
    types: Vec<Type>,
    /// The statements of this mode, in the order they run.
    copy_sql: String,
    stage_sql: String,
    apply_sql: String,
    label: String,
}

impl PgSink {
    pub(crate) fn new(pool: PgPool, table: &Table, mode: WriteMode) -> Self {
        let name = table.quoted_name();
        let cols = table.quoted_columns();
        let types: Vec<Type> = table.columns().iter().map(|(_, t)| pg_type(*t)).collect();
        let stage = quote_ident(&format!("brisk_stage_{}", table.name().replace('.', "_")));
        let key = table.quoted_key();
        let set: Vec<String> = table
            .non_key_columns()
            .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(c)))
            .collect();
        let unnest = table
            .columns()
            .iter()
            .enumerate()
            .map(|(i, (_, t))| format!("${}::{}[]", i + 1, t.pg_name()))
            .collect::<Vec<_>>()
            .join(", ");
        let (copy_sql, stage_sql, apply_sql) = match mode {
            WriteMode::Copy => (
                format!("COPY {name} ({cols}) FROM STDIN (FORMAT binary)"),
                String::new(),
                String::new(),
            ),
            WriteMode::InsertIgnore => {
                let defs = table
                    .columns()
                    .iter()
                    .map(|(c, t)| format!("{} {}", quote_ident(c), t.pg_name()))
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    format!("COPY {stage} ({cols}) FROM STDIN (FORMAT binary)"),
                    format!("CREATE TEMP TABLE IF NOT EXISTS {stage} ({defs}) ON COMMIT DELETE ROWS"),
                    format!(
                        "INSERT INTO {name} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT ({key}) DO NOTHING"
                    ),
                )
            }
            WriteMode::Upsert => (
                String::new(),
                String::new(),
                format!(
                    "INSERT INTO {name} ({cols}) SELECT * FROM UNNEST({unnest}) ON CONFLICT ({key}) DO UPDATE SET {}",
                    set.join(", ")
                ),
            ),
            WriteMode::Update => {
                let set: Vec<String> = table
                    .non_key_columns()
                    .map(|c| format!("{0} = u.{0}", quote_ident(c)))
                    .collect();
                let on: Vec<String> = table
                    .key()
                    .iter()
                    .map(|k| format!("t.{0} = u.{0}", quote_ident(k)))
                    .collect();
                (
                    String::new(),
                    String::new(),
                    format!(
                        "UPDATE {name} AS t SET {} FROM UNNEST({unnest}) AS u({cols}) WHERE {}",
                        set.join(", "),
                        on.join(" AND ")
                    ),
                )
            }
        };
        Self {
            pool,
            mode,
            types,
            copy_sql,
            stage_sql,
            apply_sql,
            label: format!("batch write to {}", table.name()),
        }
    }

    /// The most connections the pool may hold.
    pub(crate) fn pool_size(&self) -> usize {
        self.pool.stats().max_size
    }

    /// Writes `rows` in one transaction and commits, after the previous
    /// batch has finished when there is a `gate`.
    pub(crate) async fn write<R: BatchRow>(
        &self,
        rows: &[R],
        gate: Option<&mut CommitGate>,
    ) -> Result<Attempt, Error> {
        let mut conn = self.pool.get().await?;
        let start = Instant::now();
        let tx = conn.transaction().await?;
        let ctx = || Cow::Owned(self.label.clone());
        match self.mode {
            WriteMode::Copy => {
                self.copy(tx.inner(), rows, ctx).await?;
            }
            WriteMode::InsertIgnore => {
                tx.batch_execute(&self.stage_sql).await?;
                self.copy(tx.inner(), rows, ctx).await?;
                tx.execute(&self.apply_sql, &[]).await?;
            }
            WriteMode::Upsert | WriteMode::Update => {
                let columns: Vec<Vec<ValueRef<'_>>> = (0..self.types.len())
                    .map(|c| rows.iter().map(|r| r.value(c)).collect())
                    .collect();
                let params: Vec<&(dyn ToSql + Sync)> =
                    columns.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
                tx.execute(&self.apply_sql, &params).await?;
            }
        }
        if let Some(gate) = gate {
            if !gate.may_commit().await {
                // Rolled back (or lost with the connection): nothing of this
                // attempt is applied.
                let _ = tx.rollback().await;
                return Ok(Attempt::GaveWay);
            }
            if tx.inner().client().is_closed() {
                // Lost while waiting, before COMMIT was sent: the server
                // rolled the transaction back, so it is safe to retry.
                return Err(Error::Database {
                    context: ctx(),
                    sqlstate: None,
                    class: crate::RetryClass::ReconnectIfIdempotent,
                    message: "connection closed before COMMIT".to_owned(),
                    source: Box::new(std::io::Error::other("connection closed before COMMIT")),
                });
            }
        }
        let result = tx.commit().await;
        conn.record(&self.label, start.elapsed(), result.is_ok());
        result.map(|()| Attempt::Committed)
    }

    /// Streams `rows` in PostgreSQL's binary COPY format, in chunks of
    /// [`COPY_CHUNK`] bytes.
    async fn copy<R: BatchRow>(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        rows: &[R],
        ctx: impl Fn() -> Cow<'static, str>,
    ) -> Result<u64, Error> {
        let pg = |e| super::pg_error(e, ctx());
        let sink = tx.copy_in(&self.copy_sql).await.map_err(pg)?;
        let mut sink = std::pin::pin!(sink);
        let mut buf = BytesMut::with_capacity(COPY_CHUNK + 4096);
        // Signature, flags, header-extension length.
        buf.put_slice(b"PGCOPY\n\xff\r\n\0");
        buf.put_i32(0);
        buf.put_i32(0);
        let fields = i16::try_from(self.types.len())
            .map_err(|_| encode_error(ctx(), "more than 32,767 columns".into()))?;
        for row in rows {
            buf.put_i16(fields);
            for (i, ty) in self.types.iter().enumerate() {
                let at = buf.len();
                buf.put_i32(0);
                let len = match row.value(i).to_sql_checked(ty, &mut buf) {
                    Ok(IsNull::Yes) => -1,
                    Ok(IsNull::No) => i32::try_from(buf.len() - at - 4)
                        .map_err(|_| encode_error(ctx(), "a value over 2 GiB".into()))?,
                    Err(e) => return Err(encode_error(ctx(), e)),
                };
                buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
            if buf.len() >= COPY_CHUNK {
                let chunk = buf.split().freeze();
                buf.reserve(COPY_CHUNK + 4096);
                sink.send(chunk).await.map_err(pg)?;
            }
        }
        buf.put_i16(-1);
        sink.send(buf.freeze()).await.map_err(pg)?;
        sink.as_mut().finish().await.map_err(pg)
    }
}

/// Bytes of encoded rows per `CopyData` message.
const COPY_CHUNK: usize = 256 * 1024;

/// A value that could not be encoded for its column: the caller's bug, never
/// retried.
fn encode_error(context: Cow<'static, str>, source: Box<dyn std::error::Error + Send + Sync>) -> Error {
    Error::Database {
        context,
        sqlstate: None,
        class: crate::RetryClass::Never,
        message: format!("cannot encode a value: {source}"),
        source,
    }
}

impl PgPool {
    /// A batch writer into `table` on this pool; see [`BatchWriterBuilder`](crate::BatchWriterBuilder).
    pub fn batch_writer<R: BatchRow>(&self, table: Table) -> crate::BatchWriterBuilder<R> {
        crate::BatchWriterBuilder::new(crate::writer::Target::Postgres(self.clone()), table)
    }
}
