//! The report of a run: SLA verdict, percentiles, throughput, errors,
//! phases, a time series, the server trend; as a table, JSON or HTML.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::engine::RunData;
use crate::metrics::ServerSample;
use crate::{Schedule, Sla};

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The largest.
    pub max: f64,
    /// The mean.
    pub mean: f64,
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        #[allow(clippy::cast_precision_loss)]
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// Whether a run (or a phase) met its SLA, and why not.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verdict {
    /// True when p99 and the error rate are within the SLA.
    pub pass: bool,
    /// What failed, in words (empty when it passed).
    pub reasons: Vec<String>,
}

impl Verdict {
    /// Checks `p99_ms` and `error_rate` of `completed` requests against `sla`.
    #[must_use]
    pub fn check(sla: &Sla, p99_ms: f64, error_rate: f64, completed: u64) -> Self {
        let mut reasons = Vec::new();
        if completed == 0 {
            reasons.push("no request completed".to_owned());
        }
        if p99_ms > sla.p99_ms {
            reasons.push(format!("p99 {p99_ms:.2} ms > {:.2} ms", sla.p99_ms));
        }
        if error_rate > sla.max_error_rate {
            reasons.push(format!(
                "errors {:.2}% > {:.2}%",
                error_rate * 100.0,
                sla.max_error_rate * 100.0
            ));
        }
        Self {
            pass: reasons.is_empty(),
            reasons,
        }
    }
}

/// Requests and errors of one kind of request in the mix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestCount {
    /// Completed requests of this kind.
    pub count: u64,
    /// Of those, failed.
    pub errors: u64,
}

/// The whole run's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Requests the schedule planned.
    pub planned: u64,
    /// Requests that completed (a response, an error or a timeout).
    pub completed: u64,
    /// Responses with a 2xx or 3xx status.
    pub ok: u64,
    /// Everything else: 4xx/5xx, timeouts, connection errors.
    pub errors: u64,
    /// `errors / completed`.
    pub error_rate: f64,
    /// From the start to the last completion, seconds.
    pub duration_s: f64,
    /// Completed requests per second.
    pub throughput_rps: f64,
    /// Latency from the intended send time (coordinated-omission corrected).
    pub latency_ms: Percentiles,
    /// Latency from the actual send time (what a closed-loop client reports).
    pub service_ms: Percentiles,
    /// Completions by status code, or `timeout`, `connect_error`, `io_error`, `invalid_request`.
    pub statuses: BTreeMap<String, u64>,
    /// Completions and errors by request name.
    pub by_request: BTreeMap<String, RequestCount>,
}

/// One phase of the schedule (a stress step, the spike, a trial).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PhaseReport {
    /// Its name.
    pub name: String,
    /// Its target rate, requests per second.
    pub rate: f64,
    /// Its planned duration, seconds.
    pub duration_s: f64,
    /// Requests due in it that completed.
    pub completed: u64,
    /// Of those, failed.
    pub errors: u64,
    /// `errors / completed`.
    pub error_rate: f64,
    /// Completed per second of the phase's duration.
    pub throughput_rps: f64,
    /// Latency of its requests from their intended send time.
    pub latency_ms: Percentiles,
    /// Its own SLA verdict.
    pub verdict: Verdict,
}

/// One time window of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WindowReport {
    /// The window's start, seconds from the run's start.
    pub t_s: f64,
    /// The schedule's rate at the window's start.
    pub target_rps: f64,
    /// Requests that completed in the window, per second.
    pub completed_rps: f64,
    /// Failed completions in the window.
    pub errors: u64,
    /// Median latency of requests due in the window (`None`: none due).
    pub p50_ms: Option<f64>,
    /// p99 of requests due in the window.
    pub p99_ms: Option<f64>,
    /// The largest latency of requests due in the window.
    pub max_ms: Option<f64>,
}

/// The server's RSS and CPU over the run, from `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerTrend {
    /// The readings.
    pub samples: Vec<ServerSample>,
    /// RSS at the first reading, MB.
    pub rss_start_mb: Option<f64>,
    /// RSS at the last reading, MB.
    pub rss_end_mb: Option<f64>,
    /// The largest RSS, MB.
    pub rss_max_mb: Option<f64>,
    /// Least-squares slope of RSS, MB per minute.
    pub rss_slope_mb_per_min: Option<f64>,
    /// CPU use over the run, percent of one core.
    pub cpu_percent_mean: Option<f64>,
}

impl ServerTrend {
    pub(crate) fn of(samples: Vec<ServerSample>) -> Self {
        const MB: f64 = 1_048_576.0;
        let rss: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|s| Some((s.t_s, s.rss_bytes? / MB)))
            .collect();
        let cpu: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|s| Some((s.t_s, s.cpu_seconds?)))
            .collect();
        let cpu_percent_mean = match (cpu.first(), cpu.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => Some((b.1 - a.1) / (b.0 - a.0) * 100.0),
            _ => None,
        };
        Self {
            rss_start_mb: rss.first().map(|p| p.1),
            rss_end_mb: rss.last().map(|p| p.1),
            rss_max_mb: rss.iter().map(|p| p.1).reduce(f64::max),
            rss_slope_mb_per_min: slope(&rss).map(|s| s * 60.0),
            cpu_percent_mean,
            samples,
        }
    }
}

/// Least-squares slope of `y` over `x`, or `None` with fewer than 2 points.
#[must_use]
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The spike scenario's result.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SpikeReport {
    /// p99 of the first baseline phase, ms.
    pub baseline_p99_ms: f64,
    /// p99 of the requests due during the spike, ms.
    pub spike_p99_ms: f64,
    /// p99 of the baseline after the spike, ms.
    pub after_p99_ms: f64,
    /// The latency a window must be back under to count as recovered: the
    /// SLA p99, or twice the baseline p99 when that is higher.
    pub recovered_below_ms: f64,
    /// Seconds from the end of the spike until every later window's p99
    /// stayed under `recovered_below_ms` with no errors; `None`: it did not
    /// recover within the run.
    pub recovery_s: Option<f64>,
}

/// The soak scenario's trend.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SoakReport {
    /// p99 over the first tenth of the windows, ms.
    pub p99_first_ms: f64,
    /// p99 over the last tenth of the windows, ms.
    pub p99_last_ms: f64,
    /// Least-squares slope of the windows' p99, ms per minute.
    pub p99_slope_ms_per_min: Option<f64>,
    /// Server RSS slope, MB per minute (from `/metrics`).
    pub rss_slope_mb_per_min: Option<f64>,
}

/// One trial of the breaking-point search.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Trial {
    /// The rate tried, requests per second.
    pub rate: f64,
    /// Whether it met the SLA.
    pub pass: bool,
    /// Its p99, ms.
    pub p99_ms: f64,
    /// Its error rate.
    pub error_rate: f64,
    /// Its completed requests per second.
    pub throughput_rps: f64,
}

/// The breaking-point scenario's result.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BreakingPointReport {
    /// The highest rate that met the SLA (`None`: not even the lowest tried).
    pub last_passing_rps: Option<f64>,
    /// The lowest rate that failed it (`None`: none failed up to the maximum).
    pub first_failing_rps: Option<f64>,
    /// Every trial in the order run.
    pub trials: Vec<Trial>,
}

/// The WebSocket run's figures (`brisk-load ws`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WsReport {
    /// `idle` or `broadcast`.
    pub mode: String,
    /// Connections asked for.
    pub connections: u64,
    /// Connections that opened (and, for broadcast, subscribed).
    pub opened: u64,
    /// Connections that failed to open or subscribe.
    pub failed: u64,
    /// Messages published.
    pub messages: u64,
    /// Deliveries received (all connections).
    pub delivered: u64,
    /// Deliveries that never arrived: per connection, messages minus the distinct ones received.
    pub lost: u64,
    /// Deliveries received more than once.
    pub duplicated: u64,
    /// The sum of the hub's `missed` counts (slow-consumer drops it reported).
    pub missed: u64,
    /// Server RSS before opening the connections (from the stats URL).
    pub rss_before_bytes: Option<f64>,
    /// Server RSS after.
    pub rss_after_bytes: Option<f64>,
    /// `(after - before) / opened`.
    pub rss_growth_per_connection_bytes: Option<f64>,
    /// The server's stats document at the end, when it has one.
    pub server_stats: Option<serde_json::Value>,
}

/// The report of one run. Print it with [`Report::to_table`], serialize it
/// as one JSON object, or write [`Report::to_html`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// `http` or `ws`.
    pub kind: String,
    /// The scenario (`load`, `stress`, `spike`, `soak`, `breaking-point`,
    /// `idle`, `broadcast`).
    pub scenario: String,
    /// The target URL.
    pub target: String,
    /// True when the run was stopped early (Ctrl-C or the time cap).
    pub partial: bool,
    /// Remarks: caps that cut the run, the metrics that were missing.
    pub notes: Vec<String>,
    /// The SLA the verdict applies.
    pub sla: Sla,
    /// The verdict of the run.
    pub verdict: Verdict,
    /// The run's figures.
    pub summary: Summary,
    /// Its phases.
    pub phases: Vec<PhaseReport>,
    /// The length of a window, seconds.
    pub window_s: f64,
    /// The time series.
    pub windows: Vec<WindowReport>,
    /// The server's resource trend, when it exposes it.
    pub server: Option<ServerTrend>,
    /// The spike scenario's result.
    pub spike: Option<SpikeReport>,
    /// The soak scenario's trend.
    pub soak: Option<SoakReport>,
    /// The breaking-point search.
    pub breaking_point: Option<BreakingPointReport>,
    /// The WebSocket run's figures.
    pub ws: Option<WsReport>,
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Report {
    /// Builds the report of an engine run.
    pub(crate) fn from_run(
        scenario: &str,
        target: &str,
        sla: Sla,
        schedule: &Schedule,
        data: RunData,
    ) -> Self {
        let completed = data.completed();
        let error_rate = ratio(data.errors, completed);
        let duration_s = data.elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let throughput_rps = if duration_s > 0.0 {
            completed as f64 / duration_s
        } else {
            0.0
        };
        let latency_ms = Percentiles::of(&data.latency);
        let phases = schedule
            .phases()
            .iter()
            .zip(&data.phases)
            .map(|(p, acc)| {
                let done = acc.ok + acc.errors;
                let lat = Percentiles::of(&acc.latency);
                let er = ratio(acc.errors, done);
                let secs = p.duration.as_secs_f64();
                #[allow(clippy::cast_precision_loss)]
                let throughput_rps = if secs > 0.0 { done as f64 / secs } else { 0.0 };
                PhaseReport {
                    name: p.name.clone(),
                    rate: p.rate,
                    duration_s: secs,
                    completed: done,
                    errors: acc.errors,
                    error_rate: er,
                    throughput_rps,
                    latency_ms: lat,
                    verdict: Verdict::check(&sla, lat.p99, er, done),
                }
            })
            .collect();
        let window_s = data.window.as_secs_f64();
        let windows = data
            .windows
            .iter()
            .enumerate()
            .map(|(i, w)| {
                #[allow(clippy::cast_precision_loss)]
                let t_s = i as f64 * window_s;
                let some = !w.latency.is_empty();
                let p = Percentiles::of(&w.latency);
                #[allow(clippy::cast_precision_loss)]
                WindowReport {
                    t_s,
                    target_rps: schedule.rate_at(std::time::Duration::from_secs_f64(t_s)),
                    completed_rps: w.completed as f64 / window_s,
                    errors: w.errors,
                    p50_ms: some.then_some(p.p50),
                    p99_ms: some.then_some(p.p99),
                    max_ms: some.then_some(p.max),
                }
            })
            .collect();
        let mut notes = Vec::new();
        if schedule.capped() {
            notes.push(format!(
                "--max-requests cut the schedule to {} requests",
                schedule.total()
            ));
        }
        if data.stopped {
            notes.push("stopped early (Ctrl-C): a partial report".to_owned());
        }
        if data.timed_out {
            notes.push("stopped by --max-time: a partial report".to_owned());
        }
        let server = data.server.map(ServerTrend::of);
        if server.is_none() {
            notes.push("no server RSS/CPU trend: /metrics absent or without process_* metrics".to_owned());
        }
        Self {
            kind: "http".to_owned(),
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            partial: data.stopped || data.timed_out,
            notes,
            sla,
            verdict: Verdict::check(&sla, latency_ms.p99, error_rate, completed),
            summary: Summary {
                planned: data.planned,
                completed,
                ok: data.ok,
                errors: data.errors,
                error_rate,
                duration_s,
                throughput_rps,
                latency_ms,
                service_ms: Percentiles::of(&data.service),
                statuses: data.statuses,
                by_request: data
                    .by_request
                    .into_iter()
                    .map(|(k, (count, errors))| (k, RequestCount { count, errors }))
                    .collect(),
            },
            phases,
            window_s,
            windows,
            server,
            spike: None,
            soak: None,
            breaking_point: None,
            ws: None,
        }
    }

    /// The report as one JSON object.
    ///
    /// # Panics
    ///
    /// Never: every field serializes.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }

    /// The report as a table for a terminal.
    #[must_use]
    pub fn to_table(&self) -> String {
        let mut o = String::new();
        let s = &self.summary;
        let _ = writeln!(o, "brisk-load {} {} -> {}", self.kind, self.scenario, self.target);
        for n in &self.notes {
            let _ = writeln!(o, "  note: {n}");
        }
        let verdict = if self.verdict.pass {
            "PASS".to_owned()
        } else {
            format!("FAIL ({})", self.verdict.reasons.join("; "))
        };
        let pct = |p: &Percentiles| {
            format!(
                "p50 {:.3}  p95 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3} ms",
                p.p50, p.p95, p.p99, p.p999, p.max
            )
        };
        match self.ws.as_ref().map(|w| w.mode.as_str()) {
            Some("idle") => {
                let _ = writeln!(o, "verdict     {verdict}");
                let _ = writeln!(
                    o,
                    "connections planned {}  opened {}  failed {}  over {:.1} s",
                    s.planned, s.completed, s.errors, s.duration_s
                );
            }
            Some(_) => {
                let _ = writeln!(
                    o,
                    "SLA         delivery p99 <= {:.2} ms, loss <= {:.2}%, no duplicates   verdict: {verdict}",
                    self.sla.p99_ms,
                    self.sla.max_error_rate * 100.0
                );
                let _ = writeln!(
                    o,
                    "deliveries  planned {}  received {}  lost {} ({:.3}%)",
                    s.planned,
                    s.completed,
                    s.errors,
                    s.error_rate * 100.0
                );
                let _ = writeln!(
                    o,
                    "throughput  {:.1} deliveries/s over {:.1} s",
                    s.throughput_rps, s.duration_s
                );
                let _ = writeln!(o, "latency     {}   (publish to delivery)", pct(&s.latency_ms));
            }
            None => {
                let _ = writeln!(
                    o,
                    "SLA         p99 <= {:.2} ms, errors <= {:.2}%   verdict: {verdict}",
                    self.sla.p99_ms,
                    self.sla.max_error_rate * 100.0
                );
                let _ = writeln!(
                    o,
                    "requests    planned {}  completed {}  ok {}  errors {} ({:.2}%)",
                    s.planned,
                    s.completed,
                    s.ok,
                    s.errors,
                    s.error_rate * 100.0
                );
                let _ = writeln!(
                    o,
                    "throughput  {:.1} /s over {:.1} s",
                    s.throughput_rps, s.duration_s
                );
                let _ = writeln!(
                    o,
                    "latency     {}   (from the intended send time)",
                    pct(&s.latency_ms)
                );
                let _ = writeln!(
                    o,
                    "service     {}   (from the actual send; hides queueing)",
                    pct(&s.service_ms)
                );
            }
        }
        if !s.statuses.is_empty() {
            let st: Vec<String> = s.statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(o, "statuses    {}", st.join("  "));
        }
        if s.by_request.len() > 1 || s.by_request.values().any(|r| r.errors > 0) {
            let st: Vec<String> = s
                .by_request
                .iter()
                .map(|(k, v)| format!("{k}: {} ({} err)", v.count, v.errors))
                .collect();
            let _ = writeln!(o, "requests by name  {}", st.join("  "));
        }
        if self.phases.len() > 1 && self.breaking_point.is_none() {
            let _ = writeln!(
                o,
                "{:<16} {:>9} {:>7} {:>9} {:>7} {:>9} {:>9} {:>9}  SLA",
                "phase", "rate/s", "secs", "done", "err%", "thr/s", "p50 ms", "p99 ms"
            );
            for p in &self.phases {
                let _ = writeln!(
                    o,
                    "{:<16} {:>9.1} {:>7.1} {:>9} {:>7.2} {:>9.1} {:>9.3} {:>9.3}  {}",
                    p.name,
                    p.rate,
                    p.duration_s,
                    p.completed,
                    p.error_rate * 100.0,
                    p.throughput_rps,
                    p.latency_ms.p50,
                    p.latency_ms.p99,
                    if p.verdict.pass { "pass" } else { "FAIL" }
                );
            }
        }
        if let Some(srv) = &self.server {
            let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
            let _ = writeln!(
                o,
                "server      RSS {} -> {} MB (max {}, slope {} MB/min), CPU mean {}%",
                f(srv.rss_start_mb),
                f(srv.rss_end_mb),
                f(srv.rss_max_mb),
                srv.rss_slope_mb_per_min
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:+.2}")),
                f(srv.cpu_percent_mean)
            );
        }
        if let Some(sp) = &self.spike {
            let rec = sp.recovery_s.map_or_else(
                || "did not recover within the run".to_owned(),
                |r| format!("{r:.2} s"),
            );
            let _ = writeln!(
                o,
                "spike       p99 baseline {:.3} ms, spike {:.3} ms, after {:.3} ms; recovery (p99 < {:.2} ms): {rec}",
                sp.baseline_p99_ms, sp.spike_p99_ms, sp.after_p99_ms, sp.recovered_below_ms
            );
        }
        if let Some(so) = &self.soak {
            let _ = writeln!(
                o,
                "soak        p99 first tenth {:.3} ms, last tenth {:.3} ms, slope {} ms/min; RSS slope {} MB/min",
                so.p99_first_ms,
                so.p99_last_ms,
                so.p99_slope_ms_per_min
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:+.3}")),
                so.rss_slope_mb_per_min
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:+.2}"))
            );
        }
        if let Some(bp) = &self.breaking_point {
            let _ = writeln!(
                o,
                "{:<10} {:>6} {:>10} {:>8} {:>10}",
                "trial rate", "SLA", "p99 ms", "err%", "thr/s"
            );
            for t in &bp.trials {
                let _ = writeln!(
                    o,
                    "{:<10.1} {:>6} {:>10.3} {:>8.2} {:>10.1}",
                    t.rate,
                    if t.pass { "pass" } else { "FAIL" },
                    t.p99_ms,
                    t.error_rate * 100.0,
                    t.throughput_rps
                );
            }
            let f = |v: Option<f64>| v.map_or_else(|| "none".to_owned(), |v| format!("{v:.1} req/s"));
            let _ = writeln!(
                o,
                "breaking point: last passing rate {}, first failing rate {}",
                f(bp.last_passing_rps),
                f(bp.first_failing_rps)
            );
        }
        if let Some(ws) = &self.ws {
            let _ = writeln!(
                o,
                "websocket   {}: connections {} opened {} failed {}; messages {} delivered {} lost {} duplicated {} missed {}",
                ws.mode,
                ws.connections,
                ws.opened,
                ws.failed,
                ws.messages,
                ws.delivered,
                ws.lost,
                ws.duplicated,
                ws.missed
            );
            if let Some(g) = ws.rss_growth_per_connection_bytes {
                let _ = writeln!(
                    o,
                    "            server RSS growth per connection: {:.0} bytes ({:.2} KB)",
                    g,
                    g / 1024.0
                );
            }
        }
        o
    }

    /// The report as a self-contained HTML page: the table, latency over
    /// time and throughput over time as inline SVG (no script, no CDN).
    #[must_use]
    pub fn to_html(&self) -> String {
        let mut o = String::new();
        let title = format!("brisk-load {} {}", self.kind, self.scenario);
        let _ = write!(
            o,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>\
             body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}\
             .pass{{color:#17823b}}.fail{{color:#b3261e}}svg{{background:#fff;border:1px solid #ddd;margin:1em 0}}</style></head><body>",
            esc(&title)
        );
        let class = if self.verdict.pass { "pass" } else { "fail" };
        let _ = write!(
            o,
            "<h1>{}</h1><p>target <code>{}</code> &middot; verdict <b class=\"{class}\">{}</b></p>",
            esc(&title),
            esc(&self.target),
            if self.verdict.pass {
                "PASS".to_owned()
            } else {
                format!("FAIL: {}", esc(&self.verdict.reasons.join("; ")))
            }
        );
        let _ = write!(o, "<pre>{}</pre>", esc(&self.to_table()));
        let lat = |f: fn(&WindowReport) -> Option<f64>| -> Vec<(f64, f64)> {
            self.windows.iter().filter_map(|w| Some((w.t_s, f(w)?))).collect()
        };
        let x_label = if self.kind == "ws" {
            "publish time (s)"
        } else {
            "time (s)"
        };
        o.push_str(&svg_chart(
            if self.kind == "ws" {
                "Delivery latency per message (publish to delivery)"
            } else {
                "Latency over time (from the intended send time)"
            },
            x_label,
            "ms",
            &[
                ("p50", "#1f77b4", lat(|w| w.p50_ms)),
                ("p99", "#d62728", lat(|w| w.p99_ms)),
                ("max", "#aaaaaa", lat(|w| w.max_ms)),
            ],
            Some(self.sla.p99_ms),
        ));
        if self.kind == "http" {
            o.push_str(&svg_chart(
                "Throughput over time",
                x_label,
                "req/s",
                &[
                    (
                        "target rate",
                        "#999999",
                        self.windows.iter().map(|w| (w.t_s, w.target_rps)).collect(),
                    ),
                    (
                        "completed",
                        "#2ca02c",
                        self.windows.iter().map(|w| (w.t_s, w.completed_rps)).collect(),
                    ),
                    #[allow(clippy::cast_precision_loss)]
                    (
                        "errors",
                        "#d62728",
                        self.windows
                            .iter()
                            .map(|w| (w.t_s, w.errors as f64 / self.window_s.max(1e-9)))
                            .collect(),
                    ),
                ],
                None,
            ));
        }
        if let Some(srv) = &self.server {
            let rss: Vec<(f64, f64)> = srv
                .samples
                .iter()
                .filter_map(|s| Some((s.t_s, s.rss_bytes? / 1_048_576.0)))
                .collect();
            if !rss.is_empty() {
                o.push_str(&svg_chart(
                    "Server RSS",
                    "time (s)",
                    "MB",
                    &[("RSS", "#9467bd", rss)],
                    None,
                ));
            }
        }
        let _ = write!(
            o,
            "<details><summary>JSON</summary><pre>{}</pre></details></body></html>",
            esc(&self.to_json())
        );
        o
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A named, coloured line: (name, colour, points).
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A line chart as inline SVG.
fn svg_chart(title: &str, x_label: &str, unit: &str, series: &[Series<'_>], hline: Option<f64>) -> String {
    const W: f64 = 900.0;
    const H: f64 = 300.0;
    const L: f64 = 100.0;
    const R: f64 = 20.0;
    const T: f64 = 30.0;
    const B: f64 = 40.0;
    let pts = series.iter().flat_map(|s| s.2.iter());
    let x_max = pts.clone().map(|p| p.0).fold(0.0f64, f64::max).max(1e-9);
    let mut y_max = pts.map(|p| p.1).fold(0.0f64, f64::max);
    if let Some(h) = hline {
        y_max = y_max.max(h * 1.1);
    }
    let y_max = nice(y_max.max(1e-9));
    let sx = |x: f64| L + x / x_max * (W - L - R);
    let sy = |y: f64| H - B - y / y_max * (H - T - B);
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-size=\"12\">\
         <text x=\"{L}\" y=\"18\" font-weight=\"bold\">{}</text>",
        esc(title)
    );
    for k in 0..=4 {
        let y = y_max * f64::from(k) / 4.0;
        let _ = write!(
            o,
            "<line x1=\"{L}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{} {unit}</text>",
            W - R,
            L - 6.0,
            sy(y) + 4.0,
            short(y),
            y0 = sy(y)
        );
        let x = x_max * f64::from(k) / 4.0;
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            sx(x),
            H - B + 16.0,
            short(x)
        );
    }
    let _ = write!(
        o,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        (L + W - R) / 2.0,
        H - 6.0,
        esc(x_label)
    );
    if let Some(h) = hline {
        let _ = write!(
            o,
            "<line x1=\"{L}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#d62728\" stroke-dasharray=\"4 4\"/>\
             <text x=\"{}\" y=\"{:.1}\" fill=\"#d62728\" text-anchor=\"end\">SLA p99</text>",
            W - R,
            W - R,
            sy(h) - 4.0,
            y = sy(h)
        );
    }
    for (i, (name, color, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let path: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.1)))
            .collect();
        let _ = write!(
            o,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            path.join(" ")
        );
        #[allow(clippy::cast_precision_loss)]
        let lx = L + 10.0 + i as f64 * 120.0;
        let _ = write!(
            o,
            "<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            T - 2.0,
            lx + 14.0,
            T + 7.0,
            esc(name)
        );
    }
    o.push_str("</svg>");
    o
}

fn nice(v: f64) -> f64 {
    let e = 10f64.powf(v.log10().floor());
    let m = v / e;
    let n = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * e
}

fn short(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
