//! Process and system resources, sampled with sysinfo (feature `system`).
//
// CPU usage is a rate: sysinfo computes it from the CPU time used between
// two refreshes, so the first sample after start reports 0% and the figure
// is only meaningful once two samples some time apart (at least
// `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`, 200 ms on Linux) exist. The
// sampler keeps its `System` between samples for that reason.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use sysinfo::{Disks, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::Monitor;
use crate::error::MonitorError;
use crate::metric::Gauge;

/// One sample of process and system resources.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SystemSample {
    /// The process's resident memory, in bytes.
    pub process_rss_bytes: u64,
    /// The process's CPU use since the previous sample, in percent of one
    /// core (so up to 100 × cores); `None` on the first sample.
    pub process_cpu_percent: Option<f64>,
    /// The machine's memory, in bytes.
    pub memory_total_bytes: u64,
    /// The machine's memory in use, in bytes.
    pub memory_used_bytes: u64,
    /// The size of the disk holding the data directory, in bytes.
    pub disk_total_bytes: Option<u64>,
    /// Space available on it, in bytes.
    pub disk_available_bytes: Option<u64>,
}

struct Gauges {
    rss: Gauge,
    cpu: Gauge,
    mem_total: Gauge,
    mem_used: Gauge,
    disk_total: Gauge,
    disk_avail: Gauge,
}

/// Samples resources into gauges: `brisk_process_resident_memory_bytes`,
/// `brisk_process_cpu_percent`, `brisk_system_memory_total_bytes`,
/// `brisk_system_memory_used_bytes`, `brisk_disk_total_bytes{path}` and
/// `brisk_disk_available_bytes{path}`.
///
/// ```
/// let monitor = brisk_monitor::Monitor::new();
/// let sampler = brisk_monitor::SystemSampler::new(&monitor, Some(std::env::temp_dir()))?;
/// let first = sampler.sample();
/// assert!(first.process_rss_bytes > 0);
/// assert_eq!(first.process_cpu_percent, None); // needs a second sample
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SystemSampler {
    pid: Option<Pid>,
    data_dir: Option<PathBuf>,
    state: Mutex<(System, Disks, u64)>,
    gauges: Gauges,
}

impl fmt::Debug for SystemSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemSampler")
            .field("pid", &self.pid)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl SystemSampler {
    /// A sampler for this process, registering its gauges in `monitor`;
    /// `data_dir` is the directory whose disk usage is reported.
    ///
    /// # Errors
    ///
    /// [`MonitorError::KindConflict`] if the gauge names are taken.
    pub fn new(monitor: &Monitor, data_dir: Option<PathBuf>) -> Result<Self, MonitorError> {
        let path = data_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let disk = [("path", path.as_str())];
        let gauges = Gauges {
            rss: monitor.gauge(
                "brisk_process_resident_memory_bytes",
                "Resident memory of this process",
                &[],
            )?,
            cpu: monitor.gauge(
                "brisk_process_cpu_percent",
                "CPU use of this process, percent of one core",
                &[],
            )?,
            mem_total: monitor.gauge("brisk_system_memory_total_bytes", "Memory of the machine", &[])?,
            mem_used: monitor.gauge(
                "brisk_system_memory_used_bytes",
                "Memory of the machine in use",
                &[],
            )?,
            disk_total: monitor.gauge(
                "brisk_disk_total_bytes",
                "Size of the disk holding the data directory",
                &disk,
            )?,
            disk_avail: monitor.gauge(
                "brisk_disk_available_bytes",
                "Space available on the disk holding the data directory",
                &disk,
            )?,
        };
        Ok(Self {
            pid: sysinfo::get_current_pid().ok(),
            data_dir: data_dir.map(|p| p.canonicalize().unwrap_or(p)),
            state: Mutex::new((System::new(), Disks::new(), 0)),
            gauges,
        })
    }

    /// Takes a sample now and updates the gauges.
    #[allow(clippy::cast_precision_loss)]
    pub fn sample(&self) -> SystemSample {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (sys, disks, samples) = &mut *st;
        *samples += 1;
        sys.refresh_memory();
        let mut rss = 0;
        let mut cpu = None;
        if let Some(pid) = self.pid {
            sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_memory().with_cpu(),
            );
            if let Some(p) = sys.process(pid) {
                rss = p.memory();
                if *samples > 1 {
                    cpu = Some(f64::from(p.cpu_usage()));
                }
            }
        }
        let (mut disk_total, mut disk_avail) = (None, None);
        if let Some(dir) = &self.data_dir {
            disks.refresh(true);
            if let Some(d) = best_disk(disks, dir) {
                disk_total = Some(d.0);
                disk_avail = Some(d.1);
            }
        }
        let s = SystemSample {
            process_rss_bytes: rss,
            process_cpu_percent: cpu,
            memory_total_bytes: sys.total_memory(),
            memory_used_bytes: sys.used_memory(),
            disk_total_bytes: disk_total,
            disk_available_bytes: disk_avail,
        };
        self.gauges.rss.set(s.process_rss_bytes as f64);
        self.gauges.cpu.set(s.process_cpu_percent.unwrap_or(0.0));
        self.gauges.mem_total.set(s.memory_total_bytes as f64);
        self.gauges.mem_used.set(s.memory_used_bytes as f64);
        self.gauges.disk_total.set(s.disk_total_bytes.unwrap_or(0) as f64);
        self.gauges
            .disk_avail
            .set(s.disk_available_bytes.unwrap_or(0) as f64);
        s
    }

    /// Spawns a task on the current tokio runtime that samples every
    /// `every` (at least 1 s is sensible: CPU needs time between samples).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[allow(clippy::must_use_candidate)] // dropping the handle detaches the task, the usual use
    pub fn spawn(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let sampler = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let s = Arc::clone(&sampler);
                // sysinfo reads /proc synchronously: keep it off the async workers.
                let _ = tokio::task::spawn_blocking(move || s.sample()).await;
            }
        })
    }
}

/// The disk whose mount point is the longest prefix of `dir`: (total, available).
fn best_disk(disks: &Disks, dir: &Path) -> Option<(u64, u64)> {
    disks
        .list()
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| (d.total_space(), d.available_space()))
}
