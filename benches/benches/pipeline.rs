//! brisk-pipeline benchmarks, beside the baseline a user would write, in the
//! same run.
//!
//! - `pipe_noop`: a no-op handler, end to end (submit → result), on a tokio
//!   runtime with 1 and 2 worker threads and as many client tasks, each
//!   keeping a window of 256 requests in flight. `brisk` is a `Pipeline`
//!   with as many workers as threads; `mpsc_semaphore` is the plain tokio
//!   version: an mpsc channel of (request, oneshot) to a dispatcher that
//!   takes a `Semaphore` permit (as many as threads) and spawns the call.
//!   The figure is the time per request.
//! - `pipe_batching`: a simulated upstream costing 5 ms per call plus
//!   0.1 ms per item (a tokio sleep), 2,000 requests submitted at once,
//!   8 workers: `brisk_batched` (batches of up to 20) beside
//!   `brisk_unbatched` (one request per call).
//!
//! Run: `cargo bench -p brisk-benches --bench pipeline -- --warm-up-time 1 --measurement-time 3`

use std::fmt;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brisk_pipeline::{BatchResult, Classify, Endpoint, Handler, Pipeline};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio::sync::{Semaphore, mpsc, oneshot};

const WINDOW: u64 = 256;

#[derive(Clone, Debug)]
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("never")
    }
}

impl Classify for Never {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// Answers each request with itself.
struct Noop;

impl Handler for Noop {
    type Request = u64;
    type Response = u64;
    type Error = Never;

    async fn call(&self, _endpoint: &Endpoint, batch: &[u64]) -> BatchResult<u64, Never> {
        Ok(batch.iter().map(|&x| Ok(x)).collect())
    }
}

/// 5 ms per call plus 0.1 ms per item.
struct SlowUpstream;

impl Handler for SlowUpstream {
    type Request = u64;
    type Response = u64;
    type Error = Never;

    async fn call(&self, _endpoint: &Endpoint, batch: &[u64]) -> BatchResult<u64, Never> {
        let items = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        tokio::time::sleep(Duration::from_millis(5) + Duration::from_micros(100) * items).await;
        Ok(batch.iter().map(|&x| Ok(x)).collect())
    }
}

fn runtime(threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The baseline: mpsc to a dispatcher, a Semaphore bounding the spawned calls.
#[derive(Clone)]
struct MpscSemaphore {
    tx: mpsc::Sender<(u64, oneshot::Sender<u64>)>,
}

impl MpscSemaphore {
    fn start(rt: &Runtime, workers: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<(u64, oneshot::Sender<u64>)>(1 << 16);
        let permits = Arc::new(Semaphore::new(workers));
        rt.spawn(async move {
            while let Some((x, reply)) = rx.recv().await {
                let permit = Arc::clone(&permits).acquire_owned().await.expect("open");
                tokio::spawn(async move {
                    let out = Noop.call(&Endpoint::new("baseline"), &[x]).await;
                    if let Ok(mut results) = out
                        && let Some(Ok(v)) = results.pop()
                    {
                        let _ = reply.send(v);
                    }
                    drop(permit);
                });
            }
        });
        Self { tx }
    }

    async fn client(&self, n: u64) {
        let mut pending = Vec::with_capacity(WINDOW as usize);
        let mut i = 0;
        while i < n {
            let end = (i + WINDOW).min(n);
            for x in i..end {
                let (tx, rx) = oneshot::channel();
                self.tx.send((x, tx)).await.expect("dispatcher");
                pending.push(rx);
            }
            for rx in pending.drain(..) {
                black_box(rx.await.expect("answered"));
            }
            i = end;
        }
    }
}

async fn brisk_client<H: Handler<Request = u64>>(p: &Pipeline<H>, n: u64) {
    let mut pending = Vec::with_capacity(WINDOW as usize);
    let mut i = 0;
    while i < n {
        let end = (i + WINDOW).min(n);
        for x in i..end {
            pending.push(p.submit(x).await.expect("queued"));
        }
        for t in pending.drain(..) {
            let _ = black_box(t.await);
        }
        i = end;
    }
}

/// Runs `clients` client tasks sharing `iters` requests; returns the time.
fn run_clients<F, Fut>(rt: &Runtime, iters: u64, clients: u64, client: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    rt.block_on(async {
        let start = Instant::now();
        let per = iters.div_ceil(clients);
        let tasks: Vec<_> = (0..clients).map(|_| tokio::spawn(client(per))).collect();
        for t in tasks {
            t.await.expect("client");
        }
        start.elapsed()
    })
}

fn pipe_noop(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipe_noop");
    group.throughput(Throughput::Elements(1));
    for threads in [1usize, 2] {
        let rt = runtime(threads);
        let clients = threads as u64;
        let pipeline = rt.block_on(async {
            Pipeline::builder(Noop)
                .workers(threads)
                .capacity(1 << 16)
                .build()
                .expect("pipeline")
        });
        group.bench_with_input(BenchmarkId::new("brisk", threads), &threads, |b, _| {
            b.iter_custom(|iters| {
                run_clients(&rt, iters, clients, |n| {
                    let p = pipeline.clone();
                    async move { brisk_client(&p, n).await }
                })
            });
        });
        let baseline = MpscSemaphore::start(&rt, threads);
        group.bench_with_input(BenchmarkId::new("mpsc_semaphore", threads), &threads, |b, _| {
            b.iter_custom(|iters| {
                run_clients(&rt, iters, clients, |n| {
                    let base = baseline.clone();
                    async move { base.client(n).await }
                })
            });
        });
    }
    group.finish();
}

fn pipe_batching(c: &mut Criterion) {
    const REQUESTS: u64 = 2_000;
    let mut group = c.benchmark_group("pipe_batching");
    group.sample_size(10);
    group.throughput(Throughput::Elements(REQUESTS));
    let rt = runtime(2);
    for (name, size) in [("brisk_batched", 20), ("brisk_unbatched", 1)] {
        let pipeline = rt.block_on(async {
            Pipeline::builder(SlowUpstream)
                .workers(8)
                .capacity(1 << 16)
                .max_batch_size(size)
                .min_batch_size(size)
                .max_batch_wait(Duration::from_millis(10))
                .build()
                .expect("pipeline")
        });
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let tickets: Vec<_> = (0..REQUESTS)
                        .map(|x| pipeline.try_submit(x).expect("room"))
                        .collect();
                    for t in tickets {
                        let _ = black_box(t.await);
                    }
                });
            });
        });
    }
    group.finish();
}

criterion_group!(benches, pipe_noop, pipe_batching);
criterion_main!(benches);
