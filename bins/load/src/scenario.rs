//! The HTTP scenarios: load, stress, spike, soak and breaking-point.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{self, EngineConfig, RunData};
use crate::report::{BreakingPointReport, Percentiles, PhaseReport, SoakReport, SpikeReport, Trial, Verdict};
use crate::{LoadError, Mix, Phase, Report, Schedule, Sla, StopSignal, Target};

/// A configured HTTP run; each scenario method runs it once.
///
/// ```no_run
/// use std::time::Duration;
/// use brisk_load::{HttpRun, Mix, Target};
///
/// # async fn demo() -> Result<(), brisk_load::LoadError> {
/// let run = HttpRun::new(Target::parse("http://127.0.0.1:8000", false)?, Mix::brisk_server())
///     .connections(32)
///     .max_time(Duration::from_secs(60));
/// let report = run.load(200.0, Duration::from_secs(10)).await?;
/// println!("{}", report.to_table());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HttpRun {
    target: Target,
    mix: Arc<Mix>,
    sla: Sla,
    connections: usize,
    timeout: Duration,
    window: Option<Duration>,
    max_requests: u64,
    max_time: Duration,
    stop: StopSignal,
    metrics_path: Option<String>,
    seed: u64,
}

/// The settings of a breaking-point search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakingPointSearch {
    /// The first rate tried, requests per second. Default 50.
    pub start_rate: f64,
    /// The highest rate tried. Default 100,000.
    pub max_rate: f64,
    /// How long each trial runs. Default 5 s.
    pub trial_duration: Duration,
    /// The factor between rates until the first failure. Default 2.
    pub growth: f64,
    /// The search stops when the failing and passing rates are within this
    /// share of each other. Default 0.05 (5%).
    pub precision: f64,
    /// The most trials in one search. Default 20.
    pub max_trials: usize,
}

impl Default for BreakingPointSearch {
    fn default() -> Self {
        Self {
            start_rate: 50.0,
            max_rate: 100_000.0,
            trial_duration: Duration::from_secs(5),
            growth: 2.0,
            precision: 0.05,
            max_trials: 20,
        }
    }
}

fn positive(field: &str, v: f64) -> Result<f64, LoadError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(LoadError::setting(field, format!("must be > 0, got {v}")))
    }
}

fn nonzero(field: &str, d: Duration) -> Result<Duration, LoadError> {
    if d.is_zero() {
        Err(LoadError::setting(field, "must be longer than 0"))
    } else {
        Ok(d)
    }
}

impl HttpRun {
    /// A run of `mix` against `target`, with the mix's SLA (or the default).
    #[must_use]
    pub fn new(target: Target, mix: Mix) -> Self {
        Self {
            target,
            sla: mix.sla().unwrap_or_default(),
            mix: Arc::new(mix),
            connections: 64,
            timeout: Duration::from_secs(10),
            window: None,
            max_requests: 2_000_000,
            max_time: Duration::from_secs(20 * 60),
            stop: StopSignal::new(),
            metrics_path: Some("/metrics".to_owned()),
            seed: 0x5eed,
        }
    }

    /// Sets the SLA. Default: the mix file's `[sla]`, else p99 ≤ 10 ms and
    /// errors ≤ 1%.
    #[must_use]
    pub fn sla(mut self, sla: Sla) -> Self {
        self.sla = sla;
        self
    }

    /// The number of connections (and workers): the most requests in
    /// flight. Default 64.
    #[must_use]
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n;
        self
    }

    /// The per-request timeout (counted as an error). Default 10 s.
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The length of a time-series window. Default: the run's length / 150,
    /// between 100 ms and 10 s.
    #[must_use]
    pub fn window(mut self, d: Duration) -> Self {
        self.window = Some(d);
        self
    }

    /// The most requests a run sends (the schedule is cut there).
    /// Default 2,000,000.
    #[must_use]
    pub fn max_requests(mut self, n: u64) -> Self {
        self.max_requests = n;
        self
    }

    /// The longest a run lasts; it then stops with a partial report.
    /// Default 20 minutes.
    #[must_use]
    pub fn max_time(mut self, d: Duration) -> Self {
        self.max_time = d;
        self
    }

    /// A signal that stops the run early (Ctrl-C). Default: one nobody fires.
    #[must_use]
    pub fn stop_signal(mut self, stop: StopSignal) -> Self {
        self.stop = stop;
        self
    }

    /// The path of the server's Prometheus metrics for the RSS/CPU trend,
    /// or `None` to not read it. Default `/metrics`.
    #[must_use]
    pub fn metrics_path(mut self, path: Option<String>) -> Self {
        self.metrics_path = path;
        self
    }

    /// The seed of the request mix's random choices. Default fixed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn validate(&self) -> Result<(), LoadError> {
        if !(1..=10_000).contains(&self.connections) {
            return Err(LoadError::setting(
                "--connections",
                format!("must be 1 to 10,000, got {}", self.connections),
            ));
        }
        nonzero("--timeout", self.timeout)?;
        nonzero("--max-time", self.max_time)?;
        if self.max_requests == 0 {
            return Err(LoadError::setting("--max-requests", "must be at least 1"));
        }
        positive("--p99-ms", self.sla.p99_ms)?;
        if !(0.0..=1.0).contains(&self.sla.max_error_rate) {
            return Err(LoadError::setting("--max-error-rate", "must be between 0 and 1"));
        }
        Ok(())
    }

    fn window_for(&self, planned: Duration) -> Duration {
        self.window.unwrap_or_else(|| {
            let w = planned.as_secs_f64().min(self.max_time.as_secs_f64()) / 150.0;
            Duration::from_secs_f64(((w * 10.0).round() / 10.0).clamp(0.1, 10.0))
        })
    }

    async fn engine(&self, schedule: Schedule, max_time: Duration) -> RunData {
        let cfg = EngineConfig {
            target: self.target.clone(),
            mix: Arc::clone(&self.mix),
            connections: self.connections,
            timeout: self.timeout,
            window: self.window_for(schedule.duration()),
            max_time,
            stop: self.stop.clone(),
            metrics_path: self.metrics_path.clone(),
            seed: self.seed,
        };
        engine::run(cfg, schedule).await
    }

    /// Runs any phases back to back, as scenario `name`.
    ///
    /// # Errors
    ///
    /// [`LoadError::Setting`] for out-of-range settings or a phase with a
    /// negative or non-finite rate.
    pub async fn phases(&self, name: &str, phases: Vec<Phase>) -> Result<Report, LoadError> {
        self.validate()?;
        for p in &phases {
            if !(p.rate.is_finite() && p.rate >= 0.0) {
                return Err(LoadError::setting(
                    "--rate",
                    format!("phase {}: rate {} is not >= 0", p.name, p.rate),
                ));
            }
        }
        let schedule = Schedule::new(phases, self.max_requests);
        let data = self.engine(schedule.clone(), self.max_time).await;
        Ok(Report::from_run(
            name,
            self.target.as_str(),
            self.sla,
            &schedule,
            data,
        ))
    }

    /// `load`: a constant arrival rate of `rate` requests per second for
    /// `duration`.
    ///
    /// # Errors
    ///
    /// [`LoadError::Setting`] for a rate or duration that is not positive.
    pub async fn load(&self, rate: f64, duration: Duration) -> Result<Report, LoadError> {
        let rate = positive("--rate", rate)?;
        let duration = nonzero("--duration", duration)?;
        self.phases("load", vec![Phase::new("load", rate, duration)])
            .await
    }

    /// `stress`: `steps` steps of `step_duration`, from `start_rate` up by
    /// `step_rate` each; every step gets its own verdict.
    ///
    /// # Errors
    ///
    /// [`LoadError::Setting`] for non-positive settings.
    pub async fn stress(
        &self,
        start_rate: f64,
        step_rate: f64,
        steps: u32,
        step_duration: Duration,
    ) -> Result<Report, LoadError> {
        let start = positive("--start-rate", start_rate)?;
        let step = positive("--step-rate", step_rate)?;
        let d = nonzero("--step-duration", step_duration)?;
        if steps == 0 {
            return Err(LoadError::setting("--steps", "must be at least 1"));
        }
        let phases = (0..steps)
            .map(|i| Phase::new(format!("step {}", i + 1), start + step * f64::from(i), d))
            .collect();
        self.phases("stress", phases).await
    }

    /// `spike`: `baseline` at `rate`, then `spike` at `rate * factor`, then
    /// `after` at `rate` again; reports the recovery time.
    ///
    /// # Errors
    ///
    /// [`LoadError::Setting`] for non-positive settings or a factor ≤ 1.
    pub async fn spike(
        &self,
        rate: f64,
        factor: f64,
        baseline: Duration,
        spike: Duration,
        after: Duration,
    ) -> Result<Report, LoadError> {
        let rate = positive("--rate", rate)?;
        if !(factor.is_finite() && factor > 1.0) {
            return Err(LoadError::setting(
                "--factor",
                format!("must be > 1, got {factor}"),
            ));
        }
        let phases = vec![
            Phase::new("baseline", rate, nonzero("--baseline", baseline)?),
            Phase::new("spike", rate * factor, nonzero("--spike", spike)?),
            Phase::new("after", rate, nonzero("--after", after)?),
        ];
        let mut report = self.phases("spike", phases).await?;
        report.spike = Some(spike_result(&report, baseline + spike));
        Ok(report)
    }

    /// `soak`: a long constant rate; reports the trend of p99 and of the
    /// server's RSS.
    ///
    /// # Errors
    ///
    /// [`LoadError::Setting`] for a rate or duration that is not positive.
    pub async fn soak(&self, rate: f64, duration: Duration) -> Result<Report, LoadError> {
        let rate = positive("--rate", rate)?;
        let duration = nonzero("--duration", duration)?;
        self.validate()?;
        let schedule = Schedule::new(vec![Phase::new("soak", rate, duration)], self.max_requests);
        let data = self.engine(schedule.clone(), self.max_time).await;
        let tenth = data.windows.len().div_ceil(10).max(1);
        let merged = |ws: &[engine::WindowAcc]| {
            let mut h = engine::histogram(2);
            for w in ws {
                let _ = h.add(&w.latency);
            }
            Percentiles::of(&h).p99
        };
        let first = merged(&data.windows[..tenth.min(data.windows.len())]);
        let last = merged(&data.windows[data.windows.len().saturating_sub(tenth)..]);
        let mut report = Report::from_run("soak", self.target.as_str(), self.sla, &schedule, data);
        let p99s: Vec<(f64, f64)> = report
            .windows
            .iter()
            .filter_map(|w| Some((w.t_s, w.p99_ms?)))
            .collect();
        report.soak = Some(SoakReport {
            p99_first_ms: first,
            p99_last_ms: last,
            p99_slope_ms_per_min: crate::report::slope(&p99s).map(|s| s * 60.0),
            rss_slope_mb_per_min: report.server.as_ref().and_then(|s| s.rss_slope_mb_per_min),
        });
        Ok(report)
    }

    /// `breaking-point`: raises the rate by `growth` from `start_rate` until
    /// a trial fails the SLA, then bisects between the last passing and the
    /// first failing rate down to `precision`. The report's summary is the
    /// last passing trial's; its windows are all trials back to back.
    ///
    /// # Errors
    ///
    /// [`LoadError::Setting`] for out-of-range search settings.
    pub async fn breaking_point(&self, search: BreakingPointSearch) -> Result<Report, LoadError> {
        self.validate()?;
        let start = positive("--start-rate", search.start_rate)?;
        let max_rate = positive("--max-rate", search.max_rate)?;
        let trial_duration = nonzero("--trial-duration", search.trial_duration)?;
        if !(search.growth.is_finite() && search.growth > 1.0) {
            return Err(LoadError::setting(
                "--growth",
                format!("must be > 1, got {}", search.growth),
            ));
        }
        if !(search.precision > 0.0 && search.precision < 1.0) {
            return Err(LoadError::setting("--precision", "must be between 0 and 1"));
        }
        let began = std::time::Instant::now();
        let mut requests_left = self.max_requests;
        let mut trials: Vec<Trial> = Vec::new();
        let mut passing: Option<(f64, Report)> = None;
        let mut failing: Option<(f64, Report)> = None;
        let mut all_windows = Vec::new();
        let mut phases = Vec::new();
        let mut offset = 0.0;
        let mut notes = Vec::new();
        let mut partial = false;
        let mut rate = start.min(max_rate);
        while trials.len() < search.max_trials.max(1) {
            let time_left = self.max_time.saturating_sub(began.elapsed());
            if time_left.is_zero() || requests_left == 0 {
                notes.push("the search hit --max-time or --max-requests".to_owned());
                partial = true;
                break;
            }
            let schedule = Schedule::new(
                vec![Phase::new(format!("{rate:.1}/s"), rate, trial_duration)],
                requests_left,
            );
            let data = self.engine(schedule.clone(), time_left).await;
            requests_left = requests_left.saturating_sub(data.completed());
            let stopped = data.stopped || data.timed_out || schedule.capped();
            let report = Report::from_run("breaking-point", self.target.as_str(), self.sla, &schedule, data);
            for mut w in report.windows.clone() {
                w.t_s += offset;
                all_windows.push(w);
            }
            offset += report.summary.duration_s.max(trial_duration.as_secs_f64());
            trials.push(Trial {
                rate,
                pass: report.verdict.pass,
                p99_ms: report.summary.latency_ms.p99,
                error_rate: report.summary.error_rate,
                throughput_rps: report.summary.throughput_rps,
            });
            phases.push(PhaseReport {
                name: format!("trial {}", trials.len()),
                rate,
                duration_s: trial_duration.as_secs_f64(),
                completed: report.summary.completed,
                errors: report.summary.errors,
                error_rate: report.summary.error_rate,
                throughput_rps: report.summary.throughput_rps,
                latency_ms: report.summary.latency_ms,
                verdict: report.verdict.clone(),
            });
            if stopped {
                partial = true;
                notes.extend(
                    report
                        .notes
                        .iter()
                        .filter(|n| !n.starts_with("no server"))
                        .cloned(),
                );
                break;
            }
            if report.verdict.pass {
                passing = Some((rate, report));
            } else {
                failing = Some((rate, report));
            }
            let next = match (&passing, &failing) {
                (Some((p, _)), None) => {
                    if *p >= max_rate {
                        notes.push(format!("the SLA held up to --max-rate {max_rate}"));
                        break;
                    }
                    (p * search.growth).min(max_rate)
                }
                (None, Some((f, _))) => {
                    if *f <= start / 64.0 {
                        notes.push("the SLA failed even at 1/64 of --start-rate".to_owned());
                        break;
                    }
                    f / search.growth
                }
                (Some((p, _)), Some((f, _))) => {
                    if (f - p) <= search.precision * p {
                        break;
                    }
                    (p + f) / 2.0
                }
                (None, None) => break,
            };
            rate = next;
            // Let the server settle between trials.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if trials.len() >= search.max_trials {
            notes.push(format!("stopped after --max-trials {}", search.max_trials));
        }
        let last_passing = passing.as_ref().map(|p| p.0);
        let first_failing = failing.as_ref().map(|f| f.0);
        let mut report = match (passing, failing) {
            (Some((_, r)), _) | (None, Some((_, r))) => r,
            (None, None) => Report {
                sla: self.sla,
                target: self.target.as_str().to_owned(),
                ..Report::default()
            },
        };
        report.kind = "http".to_owned();
        report.scenario = "breaking-point".to_owned();
        report.partial |= partial;
        report.notes.extend(notes);
        report.windows = all_windows;
        report.phases = phases;
        report.verdict = if last_passing.is_some() {
            Verdict {
                pass: true,
                reasons: Vec::new(),
            }
        } else {
            Verdict {
                pass: false,
                reasons: vec!["no trial met the SLA".to_owned()],
            }
        };
        report.breaking_point = Some(BreakingPointReport {
            last_passing_rps: last_passing,
            first_failing_rps: first_failing,
            trials,
        });
        Ok(report)
    }
}

fn spike_result(report: &Report, spike_end: Duration) -> SpikeReport {
    let p99 = |i: usize| report.phases.get(i).map_or(0.0, |p| p.latency_ms.p99);
    let baseline = p99(0);
    let below = report.sla.p99_ms.max(2.0 * baseline);
    let end = spike_end.as_secs_f64();
    let window = report.window_s.max(1e-9);
    // The earliest window at or after the spike's end from which every
    // window with requests stays under `below` without errors.
    let after: Vec<_> = report.windows.iter().filter(|w| w.t_s + window > end).collect();
    let mut recovered_at = None;
    for w in after.iter().rev() {
        let good = w.errors == 0 && w.p99_ms.is_none_or(|p| p <= below);
        if !good {
            break;
        }
        if w.p99_ms.is_some() {
            recovered_at = Some(w.t_s);
        }
    }
    // A run whose last window is still bad has not recovered.
    SpikeReport {
        baseline_p99_ms: baseline,
        spike_p99_ms: p99(1),
        after_p99_ms: p99(2),
        recovered_below_ms: below,
        recovery_s: recovered_at.map(|t| (t - end).max(0.0)),
    }
}
