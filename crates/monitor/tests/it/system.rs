//! System resources (feature `system`).

use std::time::Duration;

use brisk_monitor::{Monitor, SystemSampler};

#[test]
fn samples_rss_cpu_memory_and_disk() {
    let monitor = Monitor::new();
    let dir = std::env::temp_dir();
    let sampler = SystemSampler::new(&monitor, Some(dir)).unwrap();
    let first = sampler.sample();
    assert!(first.process_rss_bytes > 1_000_000, "{first:?}");
    assert_eq!(first.process_cpu_percent, None, "CPU needs two samples");
    assert!(first.memory_total_bytes >= first.memory_used_bytes && first.memory_used_bytes > 0);
    let (total, avail) = (
        first.disk_total_bytes.unwrap(),
        first.disk_available_bytes.unwrap(),
    );
    assert!(total > 0 && avail <= total);
    // Burn some CPU between the two samples (sysinfo needs ≥ 200 ms between them).
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < Duration::from_millis(300) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    let second = sampler.sample();
    let cpu = second.process_cpu_percent.unwrap();
    assert!(cpu > 0.0, "cpu {cpu}");
    let text = monitor.render_prometheus();
    assert!(text.contains("# TYPE brisk_process_resident_memory_bytes gauge"));
    assert!(text.contains("brisk_disk_available_bytes{path="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spawned_sampler_fills_the_gauges_on_its_interval() {
    let monitor = Monitor::new();
    let sampler = std::sync::Arc::new(SystemSampler::new(&monitor, None).unwrap());
    let rss = monitor
        .gauge("brisk_process_resident_memory_bytes", "", &[])
        .unwrap();
    let total = monitor.gauge("brisk_system_memory_total_bytes", "", &[]).unwrap();
    assert_eq!(rss.get(), 0.0, "nothing sampled yet");
    let task = sampler.spawn(Duration::from_millis(20));
    // Wait (bounded) for the background task; nothing here measures time.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while (rss.get() == 0.0 || total.get() == 0.0) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    assert!(rss.get() > 1e6, "rss {}", rss.get());
    assert!(total.get() >= rss.get());
}
