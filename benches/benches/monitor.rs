//! brisk-monitor benchmarks, beside the metrics libraries a user would pick
//! instead, in the same run.
//!
//! - `mon_counter`: one counter increment through a handle: brisk's
//!   `Counter`, prometheus-client's `Counter`, and a `metrics::Counter`
//!   handle registered with metrics-exporter-prometheus's recorder.
//! - `mon_histogram`: one histogram record (latency-like values) with brisk
//!   (HDR buckets, true percentiles) and prometheus-client (12 buckets), on
//!   1 thread and on 2 threads recording into the same histogram at once
//!   (the time is per record per thread: equal times mean perfect scaling).
//! - `mon_render`: rendering 1,000 series (900 counters and gauges, 100
//!   histograms holding 1,000 values each) in the Prometheus text format,
//!   brisk beside prometheus-client's `encode` of the same metrics. brisk
//!   also writes each histogram's percentiles over 1 min, 5 min and 1 h:
//!   the first function records everything at once (every window holds all
//!   values), the second spreads 900 values per histogram over 15 minutes of
//!   a manual clock so every window differs.
//!
//! Run: `cargo bench -p brisk-benches --bench monitor`

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use brisk_monitor::Monitor;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PcGauge;
use prometheus_client::metrics::histogram::{Histogram as PcHistogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// 1,024 latency-like values in seconds, 0.1 ms to ~1 s, log-spread.
fn latencies() -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..1024).map(|_| 1e-4 * 10f64.powf(rng.f64() * 4.0)).collect()
}

fn pc_histogram() -> PcHistogram {
    PcHistogram::new(exponential_buckets(0.0005, 2.5, 12))
}

fn counter(c: &mut Criterion) {
    let mut group = c.benchmark_group("mon_counter");
    let monitor = Monitor::new();
    let brisk = monitor
        .counter("brisk_bench_total", "bench", &[("op", "inc")])
        .unwrap();
    group.bench_function("brisk handle", |b| b.iter(|| black_box(&brisk).inc()));

    let pc = PcCounter::<u64>::default();
    group.bench_function("prometheus_client", |b| {
        b.iter(|| {
            black_box(&pc).inc();
        });
    });

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = metrics::with_local_recorder(&recorder, || metrics::counter!("bench_total", "op" => "inc"));
    group.bench_function("metrics_handle (metrics-exporter-prometheus)", |b| {
        b.iter(|| black_box(&handle).increment(1));
    });

    let facade = monitor.recorder();
    let via_facade =
        metrics::with_local_recorder(&facade, || metrics::counter!("facade_total", "op" => "inc"));
    group.bench_function("brisk via metrics facade", |b| {
        b.iter(|| black_box(&via_facade).increment(1));
    });
    group.finish();
}

/// Runs `record(i)` `iters` times on each of `threads` threads at once and
/// returns the wall time.
fn on_threads(threads: usize, iters: u64, record: &(dyn Fn(usize) + Sync)) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for i in 0..iters {
                    record(i as usize + t * 512);
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

fn histogram(c: &mut Criterion) {
    let values = latencies();
    let mut group = c.benchmark_group("mon_histogram");
    let monitor = Monitor::new();
    let brisk = monitor.histogram("brisk_bench_seconds", "bench", &[]).unwrap();
    let pc = pc_histogram();
    for threads in [1usize, 2] {
        group.bench_with_input(BenchmarkId::new("brisk", threads), &threads, |b, &threads| {
            b.iter_custom(|iters| on_threads(threads, iters, &|i| brisk.record(values[i & 1023])));
        });
        group.bench_with_input(
            BenchmarkId::new("prometheus_client", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| on_threads(threads, iters, &|i| pc.observe(values[i & 1023])));
            },
        );
    }
    group.finish();
}

fn render(c: &mut Criterion) {
    let values = latencies();
    let mut group = c.benchmark_group("mon_render");
    group.measurement_time(Duration::from_secs(3));

    // brisk: 450 counters + 450 gauges + 100 histograms = 1,000 series.
    let monitor = Monitor::new();
    for i in 0..450 {
        let route = format!("/route/{i}");
        monitor
            .counter("brisk_requests_total", "Requests", &[("route", &route)])
            .unwrap()
            .add(i);
        #[allow(clippy::cast_precision_loss)]
        monitor
            .gauge("brisk_inflight", "In flight", &[("route", &route)])
            .unwrap()
            .set(i as f64);
    }
    for i in 0..100 {
        let op = format!("op{i}");
        let h = monitor
            .histogram("brisk_op_seconds", "Op time", &[("op", &op)])
            .unwrap();
        for v in &values[..1000] {
            h.record(*v);
        }
    }
    group.bench_function("brisk render_prometheus", |b| {
        b.iter(|| black_box(monitor.render_prometheus()));
    });

    // The same series after a quarter of an hour of traffic (manual clock):
    // 10 values per histogram in each of 90 ten-second slots, so the 1 min,
    // 5 min and 1 h windows hold different values from the cumulative ones
    // and each window's percentiles are computed from its own slots.
    let clock = brisk_core::ManualClock::new();
    let aged = Monitor::builder().clock(clock.shared()).build().unwrap();
    let mut hists = Vec::new();
    for i in 0..450 {
        let route = format!("/route/{i}");
        aged.counter("brisk_requests_total", "Requests", &[("route", &route)])
            .unwrap()
            .add(i);
        #[allow(clippy::cast_precision_loss)]
        aged.gauge("brisk_inflight", "In flight", &[("route", &route)])
            .unwrap()
            .set(i as f64);
    }
    for i in 0..100 {
        let op = format!("op{i}");
        hists.push(
            aged.histogram("brisk_op_seconds", "Op time", &[("op", &op)])
                .unwrap(),
        );
    }
    for slot in 0..90 {
        for h in &hists {
            for v in &values[slot * 10..slot * 10 + 10] {
                h.record(*v);
            }
        }
        aged.tick();
        clock.advance(Duration::from_secs(10));
    }
    group.bench_function("brisk render_prometheus, 15 min of windows", |b| {
        b.iter(|| black_box(aged.render_prometheus()));
    });

    // prometheus-client: the same metrics.
    let mut registry = Registry::default();
    let requests = Family::<Vec<(String, String)>, PcCounter>::default();
    let inflight = Family::<Vec<(String, String)>, PcGauge>::default();
    let ops = Family::<Vec<(String, String)>, PcHistogram>::new_with_constructor(
        pc_histogram as fn() -> PcHistogram,
    );
    registry.register("requests", "Requests", requests.clone());
    registry.register("inflight", "In flight", inflight.clone());
    registry.register("op_seconds", "Op time", ops.clone());
    for i in 0..450i64 {
        let labels = vec![("route".to_owned(), format!("/route/{i}"))];
        requests.get_or_create(&labels).inc_by(i.unsigned_abs());
        inflight.get_or_create(&labels).set(i);
    }
    for i in 0..100 {
        let h = ops.get_or_create(&vec![("op".to_owned(), format!("op{i}"))]);
        for v in &values[..1000] {
            h.observe(*v);
        }
    }
    group.bench_function("prometheus_client encode", |b| {
        b.iter(|| {
            let mut out = String::with_capacity(64 * 1024);
            encode(&mut out, &registry).unwrap();
            black_box(out)
        });
    });
    group.finish();
}

criterion_group!(benches, counter, histogram, render);
criterion_main!(benches);
