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
