//! The batch writer: a bounded queue in front of one background task that
//! groups rows into transactions.
//
// Design:
// - Backpressure is counted in rows: a write first takes one semaphore
//   permit per row (waiting while the queue is full) and the permits are
//   released only when the batch holding those rows is committed or has
//   failed, so queued-plus-in-flight rows never exceed the capacity.
// - The task takes the first waiting write, then keeps taking writes until
//   the batch has `max_batch_rows` rows or `flush_interval` has passed since
//   that first write: flush by size or by time.
// - A write's `Receipt` resolves only after the transaction holding its rows
//   has committed (per-batch results, acknowledged after commit).
// - A failed batch is retried with brisk-core's `Backoff` when that cannot
//   duplicate rows: always for the idempotent modes, and for `Copy` only
//   when the failure came before `COMMIT` (the server rolled it back).
// - Up to `parallel_batches` batches are in flight at once, each its own
//   task, transaction and (PostgreSQL) connection: a semaphore with that
//   many permits. One COPY keeps one server backend busy; on a server with
//   cores to spare, two or more run side by side. Each batch keeps its own
//   commit-then-acknowledge and retry rules, so parallelism changes only
//   the order in which batches commit. A flush takes every permit, so it
//   returns after every batch before it.
// - With `parallel_batches(1)` on PostgreSQL (and a pool of at least two
//   connections), batches overlap but still commit in order: two slots,
//   and each batch holds a `CommitGate` on the batch before it. Batch k
//   checks out its connection, runs BEGIN and its COPY (or statements) while
//   batch k-1 is still committing, then waits at the gate before COMMIT
//   until batch k-1 has finished (committed, or failed for good). Without
//   this the pipeline drains between batches: nothing is encoded or sent
//   while the server finishes the previous COPY and COMMIT.
// - If batch k-1 fails an attempt (it will retry, or it has given up),
//   batch k rolls its transaction back instead of committing, waits until
//   k-1 has finished, and runs again with nothing left to wait for (that
//   extra run is not counted as a retry). So k-1's retry never waits on
//   locks held by k's open transaction (which waits on k-1: a deadlock the
//   server cannot see), k never commits ahead of k-1, and a batch whose
//   connection died during an outage is redone on a fresh one. A batch
//   whose connection closed while it waited fails as "rolled back" (safe
//   to retry), not as an unknown COMMIT outcome. Each batch is still
//   acknowledged after its own commit and retried under the same rules.
//   SQLite has one writer and no gate: its batches go one at a time.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use brisk_core::{Backoff, ConfigError, StatsReport, StatsSource};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::histogram::{Histogram, LatencySummary};
use crate::{BatchRow, Error, RetryClass, Table, WriteMode};

/// Where a writer's batches go.
#[derive(Debug)]
pub(crate) enum Sink {
    #[cfg(feature = "postgres")]
    Postgres(crate::pg::PgSink),
    #[cfg(feature = "sqlite")]
    Sqlite(crate::sqlite::SqliteSink),
}

impl Sink {
    async fn write<R: BatchRow>(
        &self,
        rows: Vec<R>,
        gate: Option<&mut CommitGate>,
    ) -> (Vec<R>, Result<Attempt, Error>) {
        match self {
            #[cfg(feature = "postgres")]
            Sink::Postgres(s) => {
                let result = s.write(&rows, gate).await;
                (rows, result)
            }
            #[cfg(feature = "sqlite")]
            Sink::Sqlite(s) => {
                // One writer: batches never overlap, so there is no gate.
                debug_assert!(gate.is_none(), "SQLite batches do not overlap");
                let (rows, result) = s.write(rows).await;
                (rows, result.map(|()| Attempt::Committed))
            }
        }
    }

    /// Whether a batch may run up to its COMMIT while the one before it
    /// finishes (see the design notes): PostgreSQL with a pool of at least
    /// two connections.
    fn overlaps(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            Sink::Postgres(s) => s.pool_size() >= 2,
            #[cfg(feature = "sqlite")]
            Sink::Sqlite(_) => false,
        }
    }
}

/// How one attempt at a batch ended, when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Only the PostgreSQL sink gives way.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) enum Attempt {
    /// Committed.
    Committed,
    /// Rolled back before COMMIT because the batch before it failed an
    /// attempt; run it again once that batch has finished.
    GaveWay,
}

/// What a batch tells the batch after it.
#[derive(Clone, Copy, Debug, Default)]
struct Turn {
    /// An attempt failed (the batch retried or gave up).
    faltered: bool,
    /// Committed or failed for good.
    done: bool,
}

/// Keeps commits in order when batches overlap: batch k's view of batch
/// k-1.
#[derive(Debug)]
pub(crate) struct CommitGate {
    prev: watch::Receiver<Turn>,
}

impl CommitGate {
    /// The previous batch's state now. A batch that went away without a
    /// word (its task panicked) counts as finished after a failure.
    fn turn(&self) -> Turn {
        if self.prev.has_changed().is_err() && !self.prev.borrow().done {
            return Turn {
                faltered: true,
                done: true,
            };
        }
        *self.prev.borrow()
    }

    async fn wait(&mut self, f: impl Fn(&Turn) -> bool) -> Turn {
        match self.prev.wait_for(f).await {
            Ok(turn) => *turn,
            Err(_) => Turn {
                faltered: true,
                done: true,
            },
        }
    }

    /// Waits until the previous batch has finished or has failed an
    /// attempt; `true` when this batch may commit now (the previous one
    /// finished without a failed attempt), `false` when it must roll back
    /// and give way.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) async fn may_commit(&mut self) -> bool {
        !self.wait(|t| t.done || t.faltered).await.faltered
    }

    /// Waits until the previous batch has finished.
    async fn finished(&mut self) {
        self.wait(|t| t.done).await;
    }
}

/// A pending target: a backend and the table, before the writer's settings.
#[derive(Debug)]
pub(crate) enum Target {
    #[cfg(feature = "postgres")]
    Postgres(crate::PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(crate::SqliteStore),
}

/// Builds a [`BatchWriter`]; from `PgPool::batch_writer`,
/// `SqliteStore::batch_writer` or [`Store::batch_writer`](crate::Store::batch_writer).
#[derive(Debug)]
#[must_use]
pub struct BatchWriterBuilder<R> {
    target: Target,
    table: Table,
    mode: WriteMode,
    max_batch_rows: usize,
    flush_interval: Duration,
    queue_rows: usize,
    parallel_batches: usize,
    retry: Backoff,
    _rows: PhantomData<fn(R)>,
}

fn default_retry() -> Backoff {
    Backoff::builder()
        .base(Duration::from_millis(50))
        .cap(Duration::from_secs(2))
        .max_attempts(12)
        .build()
        .unwrap_or_default()
}

impl<R: BatchRow> BatchWriterBuilder<R> {
    pub(crate) fn new(target: Target, table: Table) -> Self {
        Self {
            target,
            table,
            mode: WriteMode::default(),
            max_batch_rows: 1000,
            flush_interval: Duration::from_millis(50),
            queue_rows: 100_000,
            parallel_batches: 1,
            retry: default_retry(),
            _rows: PhantomData,
        }
    }

    /// How rows are applied. Default [`WriteMode::Copy`].
    pub fn mode(mut self, mode: WriteMode) -> Self {
        self.mode = mode;
        self
    }

    /// A batch is written once it has this many rows. Default 1,000. (A
    /// single write larger than this is kept whole in one batch.)
    pub fn max_batch_rows(mut self, rows: usize) -> Self {
        self.max_batch_rows = rows;
        self
    }

    /// A batch is written at most this long after its first row arrived,
    /// however small. Default 50 ms.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Rows queued or in flight at most; a write waits while the queue is
    /// full (backpressure). Default 100,000; at least `max_batch_rows`.
    pub fn queue_rows(mut self, rows: usize) -> Self {
        self.queue_rows = rows;
        self
    }

    /// How many batches may be written at once, each in its own
    /// transaction on its own connection. At least 1.
    ///
    /// Default 1: batches commit in the order their rows were written. On
    /// PostgreSQL with a pool of at least two connections, two batches
    /// overlap to keep the pipeline full: batch k checks out a connection,
    /// runs `BEGIN` and its `COPY` (or statements) while batch k−1 is
    /// still finishing, then waits before its `COMMIT` until batch k−1 has
    /// committed or failed for good. If batch k−1 fails an attempt, batch k
    /// rolls back and runs again once k−1 has finished (not counted as a
    /// retry), so no batch commits ahead of an earlier one.
    ///
    /// More than 1 lets a large stream use more than one server backend
    /// (binary COPY is CPU-bound on the server); batches then commit in any
    /// order. Either way each batch is acknowledged only after its own
    /// commit and retried under the same rules. A PostgreSQL pool needs at
    /// least this many connections to spare (two for the default overlap);
    /// SQLite has one writer, so its batches go one at a time.
    pub fn parallel_batches(mut self, n: usize) -> Self {
        self.parallel_batches = n;
        self
    }

    /// The retry policy for failed batches. Default: base 50 ms, cap 2 s,
    /// 12 attempts (about 10 s of outage on average before giving up).
    pub fn retry(mut self, backoff: Backoff) -> Self {
        self.retry = backoff;
        self
    }

    /// Checks the settings and starts the writer's task (needs a tokio
    /// runtime).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `batch_writer.max_batch_rows`,
    /// `batch_writer.flush_interval`, `batch_writer.queue_rows`,
    /// `batch_writer.parallel_batches` or
    /// `batch_writer.mode` (a mode that needs a key the table lacks).
    pub fn build(self) -> Result<BatchWriter<R>, Error> {
        if self.max_batch_rows == 0 {
            return Err(ConfigError::new("batch_writer.max_batch_rows", "must be at least 1").into());
        }
        if self.parallel_batches == 0 {
            return Err(ConfigError::new("batch_writer.parallel_batches", "must be at least 1").into());
        }
        if self.flush_interval.is_zero() {
            return Err(ConfigError::new("batch_writer.flush_interval", "must be greater than zero").into());
        }
        if self.queue_rows < self.max_batch_rows {
            return Err(ConfigError::new(
                "batch_writer.queue_rows",
                format!(
                    "must be at least `max_batch_rows` ({}), got {}",
                    self.max_batch_rows, self.queue_rows
                ),
            )
            .into());
        }
        self.table.check_mode(self.mode)?;
        let sink = match self.target {
            #[cfg(feature = "postgres")]
            Target::Postgres(pool) => Sink::Postgres(crate::pg::PgSink::new(pool, &self.table, self.mode)),
            #[cfg(feature = "sqlite")]
            Target::Sqlite(store) => {
                Sink::Sqlite(crate::sqlite::SqliteSink::new(store, &self.table, self.mode))
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            sink,
            mode: self.mode,
            max_batch_rows: self.max_batch_rows,
            flush_interval: self.flush_interval,
            retry: self.retry,
            counters: Arc::clone(&counters),
        };
        tokio::spawn(Arc::new(worker).run(rx, self.parallel_batches));
        Ok(BatchWriter {
            tx,
            permits: Arc::new(Semaphore::new(self.queue_rows)),
            capacity: self.queue_rows,
            columns: self.table.columns().len(),
            table: self.table.name().to_owned(),
            counters,
        })
    }
}

enum Msg<R> {
    Rows {
        rows: Vec<R>,
        _permit: OwnedSemaphorePermit,
        ack: oneshot::Sender<Result<BatchAck, Error>>,
    },
    Flush(oneshot::Sender<()>),
}

/// What a committed batch reports to each write in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchAck {
    /// The batch's number within this writer (from 1).
    pub batch: u64,
    /// Rows of this write.
    pub rows: usize,
    /// Rows in the whole batch.
    pub batch_rows: usize,
    /// Attempts the batch took (1 when it was not retried).
    pub attempts: u32,
}

/// Resolves to the write's [`BatchAck`] once its batch has committed, or to
/// the batch's error. Dropping it does not cancel the write.
#[derive(Debug)]
#[must_use = "a write is acknowledged only when its receipt resolves"]
pub struct Receipt {
    rx: oneshot::Receiver<Result<BatchAck, Error>>,
}

impl Future for Receipt {
    type Output = Result<BatchAck, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed { what: "batch writer" })))
    }
}

#[derive(Debug, Default)]
struct Counters {
    rows_written: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
    failed_batches: AtomicU64,
    failed_rows: AtomicU64,
    queued_rows: AtomicU64,
    batch_latency: Histogram,
}

/// A snapshot of a writer's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Rows committed.
    pub rows_written: u64,
    /// Batches committed.
    pub batches: u64,
    /// Batch attempts that were retried.
    pub retries: u64,
    /// Batches that failed for good.
    pub failed_batches: u64,
    /// Rows in those batches.
    pub failed_rows: u64,
    /// Rows queued or in flight now.
    pub queued_rows: u64,
    /// Time from a batch's first attempt to its commit.
    pub batch_latency: LatencySummary,
}

/// Writes rows in batches, each one transaction, acknowledged after commit.
///
/// Cheap to share behind an `Arc`; every method takes `&self`. Dropping the
/// writer lets its task write what is queued and stop.
#[derive(Debug)]
pub struct BatchWriter<R> {
    tx: mpsc::UnboundedSender<Msg<R>>,
    permits: Arc<Semaphore>,
    capacity: usize,
    columns: usize,
    table: String,
    counters: Arc<Counters>,
}

impl<R: BatchRow> BatchWriter<R> {
    /// Queues `rows` (waiting while the queue is full) and returns a
    /// [`Receipt`] that resolves once they are committed. The rows of one
    /// call always go into the same batch.
    ///
    /// # Errors
    ///
    /// [`Error::RowShape`] if a row has the wrong number of values,
    /// [`Error::BatchTooLarge`] if `rows` alone exceed the queue, and
    /// [`Error::Closed`] if the writer's task has stopped.
    pub async fn write(&self, rows: Vec<R>) -> Result<Receipt, Error> {
        if let Some(bad) = rows.iter().find(|r| r.len() != self.columns) {
            return Err(Error::RowShape {
                table: self.table.clone(),
                expected: self.columns,
                found: bad.len(),
            });
        }
        if rows.len() > self.capacity {
            return Err(Error::BatchTooLarge {
                rows: rows.len(),
                capacity: self.capacity,
            });
        }
        let n = u32::try_from(rows.len()).map_err(|_| Error::BatchTooLarge {
            rows: rows.len(),
            capacity: self.capacity,
        })?;
        let permit = Arc::clone(&self.permits)
            .acquire_many_owned(n)
            .await
            .map_err(|_| Error::Closed { what: "batch writer" })?;
        let (ack, rx) = oneshot::channel();
        self.counters
            .queued_rows
            .fetch_add(u64::from(n), Ordering::Relaxed);
        self.tx
            .send(Msg::Rows {
                rows,
                _permit: permit,
                ack,
            })
            .map_err(|_| Error::Closed { what: "batch writer" })?;
        Ok(Receipt { rx })
    }

    /// [`write`](Self::write), then waits for the commit.
    ///
    /// # Errors
    ///
    /// As for `write`, or the batch's error.
    pub async fn write_and_wait(&self, rows: Vec<R>) -> Result<BatchAck, Error> {
        self.write(rows).await?.await
    }

    /// Writes whatever is queued now without waiting for the flush interval,
    /// and returns once it has been committed or has failed.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the writer's task has stopped.
    pub async fn flush(&self) -> Result<(), Error> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Msg::Flush(done))
            .map_err(|_| Error::Closed { what: "batch writer" })?;
        rx.await.map_err(|_| Error::Closed { what: "batch writer" })
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            rows_written: c.rows_written.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
            failed_rows: c.failed_rows.load(Ordering::Relaxed),
            queued_rows: c.queued_rows.load(Ordering::Relaxed),
            batch_latency: c.batch_latency.snapshot(),
        }
    }
}

impl<R: BatchRow> StatsSource for BatchWriter<R> {
    fn report_stats(&self, out: &mut StatsReport) {
        let s = self.stats();
        let table = self.table.clone();
        let counters = [
            (
                "brisk_db_writer_rows_total",
                "Rows committed by the batch writer",
                s.rows_written,
            ),
            ("brisk_db_writer_batches_total", "Batches committed", s.batches),
            (
                "brisk_db_writer_retries_total",
                "Batch attempts retried",
                s.retries,
            ),
            (
                "brisk_db_writer_failed_batches_total",
                "Batches that failed for good",
                s.failed_batches,
            ),
            (
                "brisk_db_writer_failed_rows_total",
                "Rows in failed batches",
                s.failed_rows,
            ),
        ];
        for (name, help, v) in counters {
            let _ = out.counter(name, help, v).label("table", table.clone());
        }
        #[allow(clippy::cast_precision_loss)]
        let _ = out
            .gauge(
                "brisk_db_writer_queued_rows",
                "Rows queued or in flight",
                s.queued_rows as f64,
            )
            .label("table", table.clone());
        for (q, d) in [("0.5", s.batch_latency.p50), ("0.99", s.batch_latency.p99)] {
            let _ = out
                .gauge(
                    "brisk_db_writer_batch_seconds",
                    "Time to commit a batch",
                    d.as_secs_f64(),
                )
                .label("table", table.clone())
                .label("quantile", q);
        }
    }
}

struct Worker {
    sink: Sink,
    mode: WriteMode,
    max_batch_rows: usize,
    flush_interval: Duration,
    retry: Backoff,
    counters: Arc<Counters>,
}

struct Pending {
    ack: oneshot::Sender<Result<BatchAck, Error>>,
    rows: usize,
    _permit: OwnedSemaphorePermit,
}

impl Worker {
    async fn run<R: BatchRow>(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Msg<R>>, parallel: usize) {
        // One batch at a time, in order: two slots, the second batch gated
        // at its COMMIT on the first (see the design notes).
        let ordered = parallel == 1 && self.sink.overlaps();
        let parallel = if ordered { 2 } else { parallel };
        // `parallel` is at least 1 (checked by `build`) and small.
        let parallel = u32::try_from(parallel.min(Semaphore::MAX_PERMITS)).unwrap_or(1);
        let in_flight = Arc::new(Semaphore::new(parallel as usize));
        let mut batch_no = 0u64;
        // The last batch started, for the next one's gate.
        let mut last: Option<watch::Receiver<Turn>> = None;
        let mut closed = false;
        while !closed {
            // A free slot first, then the batch: while every slot is busy,
            // writes wait in the channel and the next batch grows (with one
            // slot, batches form exactly as with no parallelism at all). The
            // semaphore is never closed, so acquiring cannot fail.
            let Ok(slot) = Arc::clone(&in_flight).acquire_owned().await else {
                return;
            };
            let mut rows: Vec<R> = Vec::new();
            let mut pending: Vec<Pending> = Vec::new();
            let mut flushed: Vec<oneshot::Sender<()>> = Vec::new();
            let mut deadline = None;
            loop {
                let msg = match deadline {
                    None => rx.recv().await,
                    Some(deadline) => tokio::select! {
                        msg = rx.recv() => msg,
                        () = tokio::time::sleep_until(deadline) => break,
                    },
                };
                match msg {
                    None => {
                        closed = true;
                        break;
                    }
                    Some(Msg::Flush(done)) => {
                        flushed.push(done);
                        break;
                    }
                    Some(Msg::Rows {
                        rows: r,
                        _permit,
                        ack,
                    }) => {
                        deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.flush_interval);
                        pending.push(Pending {
                            ack,
                            rows: r.len(),
                            _permit,
                        });
                        if rows.is_empty() {
                            rows = r;
                        } else {
                            rows.extend(r);
                        }
                        if rows.len() >= self.max_batch_rows {
                            break;
                        }
                    }
                }
            }
            if rows.is_empty() {
                drop(slot);
            } else {
                batch_no += 1;
                let (turn, gate) = if ordered {
                    let (tx, rx) = watch::channel(Turn::default());
                    let gate = last.replace(rx).map(|prev| CommitGate { prev });
                    (Some(tx), gate)
                } else {
                    (None, None)
                };
                let worker = Arc::clone(&self);
                tokio::spawn(async move {
                    worker.write_batch(batch_no, rows, pending, turn, gate).await;
                    drop(slot);
                });
            }
            if !flushed.is_empty() || closed {
                // Every batch before the flush (or the close) has finished.
                let _ = in_flight.acquire_many(parallel).await;
            }
            for done in flushed {
                let _ = done.send(());
            }
        }
    }

    /// Writes one batch with retries and acknowledges its writes. `turn`
    /// tells the next batch how this one is doing; `gate` is the previous
    /// batch's (both only when batches overlap in order).
    async fn write_batch<R: BatchRow>(
        &self,
        batch: u64,
        mut rows: Vec<R>,
        pending: Vec<Pending>,
        turn: Option<watch::Sender<Turn>>,
        mut gate: Option<CommitGate>,
    ) {
        let total = rows.len();
        let start = Instant::now();
        let mut retries = self.retry.retries();
        let result = loop {
            // Once the previous batch has finished there is nothing to wait
            // for; once it has failed an attempt, wait for it to finish
            // before starting (it may need the connection and the locks).
            if let Some(g) = gate.as_mut() {
                let t = g.turn();
                if t.faltered && !t.done {
                    g.finished().await;
                }
                if t.faltered || t.done {
                    gate = None;
                }
            }
            let (back, result) = self.sink.write(rows, gate.as_mut()).await;
            rows = back;
            let err = match result {
                Ok(Attempt::Committed) => break Ok(retries.attempts()),
                Ok(Attempt::GaveWay) => continue,
                Err(e) => e,
            };
            if let Some(turn) = &turn {
                turn.send_modify(|t| t.faltered = true);
            }
            let safe = match err.retry_class() {
                // Failed before COMMIT: rolled back, safe in every mode.
                RetryClass::RetryTransaction | RetryClass::ReconnectIfIdempotent => true,
                RetryClass::OutcomeUnknown => self.mode.is_idempotent(),
                RetryClass::Never => false,
            };
            match retries.next_delay().filter(|_| safe) {
                Some(delay) => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                }
                None => break Err((err, retries.attempts())),
            }
        };
        if let Some(turn) = turn {
            turn.send_modify(|t| t.done = true);
        }
        let c = &self.counters;
        c.queued_rows.fetch_sub(total as u64, Ordering::Relaxed);
        match result {
            Ok(attempts) => {
                c.rows_written.fetch_add(total as u64, Ordering::Relaxed);
                c.batches.fetch_add(1, Ordering::Relaxed);
                c.batch_latency.record(start.elapsed());
                for p in pending {
                    let _ = p.ack.send(Ok(BatchAck {
                        batch,
                        rows: p.rows,
                        batch_rows: total,
                        attempts,
                    }));
                }
            }
            Err((err, attempts)) => {
                c.failed_batches.fetch_add(1, Ordering::Relaxed);
                c.failed_rows.fetch_add(total as u64, Ordering::Relaxed);
                let message = err.to_string();
                let sqlstate = err.sqlstate().map(str::to_owned);
                let class = err.retry_class();
                let mut first = Some(err);
                for p in pending {
                    let e = match first.take() {
                        Some(e) if attempts <= 1 => e,
                        Some(e) => Error::RetriesExhausted {
                            attempts,
                            last: Box::new(e),
                        },
                        None => Error::BatchFailed {
                            batch,
                            rows: total,
                            attempts,
                            sqlstate: sqlstate.clone(),
                            class,
                            message: message.clone(),
                        },
                    };
                    let _ = p.ack.send(Err(e));
                }
            }
        }
    }
}
