//! `brisk-load`: load, stress, spike, soak and breaking-point runs against
//! an HTTP service on loopback, and WebSocket broadcast probes against
//! brisk-ws-hub. See `docs/load.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use brisk_load::{
    BreakingPointSearch, HttpRun, Mix, Report, Scale, Sla, StopSignal, SuiteOptions, Target, WsRun,
};
use clap::{Args, Parser, Subcommand};

/// Open-loop load runs with SLA verdicts, over loopback.
#[derive(Debug, Parser)]
#[command(name = "brisk-load", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// HTTP scenarios against a service (default mix: brisk-server's API).
    Http {
        #[command(subcommand)]
        scenario: HttpScenario,
    },
    /// WebSocket runs against a brisk-ws-hub endpoint: without a mode, a
    /// broadcast (`ws --url URL --connections N --topics T --rate MSGS_PER_S
    /// --duration SECS [--slow-readers K] [--json]`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Ws {
        #[command(subcommand)]
        mode: Option<WsMode>,
        #[command(flatten)]
        broadcast: Box<BroadcastArgs>,
    },
    /// brisk's own parts in-process, each beside the old system's figure.
    Suite {
        /// small (seconds), default (the old system's sizes) or large (also 100k posts).
        #[arg(long, default_value = "default")]
        scale: String,
        /// The same as --scale small.
        #[arg(long)]
        quick: bool,
        /// A PostgreSQL URL: the insert line also runs there.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Child processes that send the concurrent requests (0: this process; default: this process up to 1,000 requests, else one per 2,500).
        #[arg(long)]
        client_processes: Option<usize>,
    },
    /// The suite's client process (run by `suite`, not by hand).
    #[command(hide = true)]
    SuiteClient {
        /// The server's address.
        #[arg(long)]
        addr: std::net::SocketAddr,
        /// The first request's number.
        #[arg(long)]
        first: usize,
        /// Requests per round.
        #[arg(long)]
        count: usize,
        /// Requests per source address.
        #[arg(long)]
        per_source: usize,
        /// The first source address's last octet.
        #[arg(long)]
        source_base: usize,
    },
    /// A `ws broadcast` client process (run by `ws broadcast --client-processes`, not by hand).
    #[command(hide = true)]
    WsClient {
        /// The hubs' WebSocket URLs, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        target: Vec<String>,
        /// The topic.
        #[arg(long)]
        topic: String,
        /// Topics the connections spread over.
        #[arg(long, default_value_t = 1)]
        topics: usize,
        /// The first connection's number in the run.
        #[arg(long)]
        first: usize,
        /// Connections this process opens.
        #[arg(long)]
        count: usize,
        /// Connections per source address.
        #[arg(long)]
        per_source: usize,
        /// The first source address's last octet.
        #[arg(long)]
        source_base: usize,
    },
}

#[derive(Debug, Subcommand)]
enum HttpScenario {
    /// A constant arrival rate.
    Load {
        #[command(flatten)]
        common: HttpCommon,
        /// Requests per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// How long (e.g. 30s, 5m).
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// Steps the rate up: --steps steps of --step-duration each.
    Stress {
        #[command(flatten)]
        common: HttpCommon,
        /// The first step's rate.
        #[arg(long, default_value_t = 50.0)]
        start_rate: f64,
        /// How much each step adds.
        #[arg(long, default_value_t = 50.0)]
        step_rate: f64,
        /// The number of steps.
        #[arg(long, default_value_t = 10)]
        steps: u32,
        /// Each step's length.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        step_duration: Duration,
    },
    /// A baseline, a sudden --factor times the rate, the baseline again; reports recovery.
    Spike {
        #[command(flatten)]
        common: HttpCommon,
        /// The baseline rate.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// The spike's multiple of the baseline.
        #[arg(long, default_value_t = 10.0)]
        factor: f64,
        /// The baseline before the spike.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        baseline: Duration,
        /// The spike.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        spike: Duration,
        /// The baseline after the spike.
        #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
        after: Duration,
    },
    /// A long constant rate, with the trend of p99 and server RSS.
    Soak {
        #[command(flatten)]
        common: HttpCommon,
        /// Requests per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// How long.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// Raises the rate until the SLA fails, then bisects; reports the last passing rate.
    BreakingPoint {
        #[command(flatten)]
        common: HttpCommon,
        /// The first rate tried.
        #[arg(long, default_value_t = 50.0)]
        start_rate: f64,
        /// The highest rate tried.
        #[arg(long, default_value_t = 100_000.0)]
        max_rate: f64,
        /// Each trial's length.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        trial_duration: Duration,
        /// The factor between rates until the first failure.
        #[arg(long, default_value_t = 2.0)]
        growth: f64,
        /// Stop bisecting when failing and passing rates are this close (a share).
        #[arg(long, default_value_t = 0.05)]
        precision: f64,
        /// The most trials.
        #[arg(long, default_value_t = 20)]
        max_trials: usize,
    },
}

/// Flags every HTTP scenario takes.
#[derive(Debug, Args)]
struct HttpCommon {
    /// The service's URL, like `http://127.0.0.1:8000` (127.0.0.0/8 and `::1` only, unless --allow-remote).
    #[arg(long)]
    target: String,
    /// A mix file (TOML); default: the built-in brisk-server mix.
    #[arg(long)]
    mix: Option<PathBuf>,
    /// Concurrent connections (the most requests in flight).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Per-request timeout (an error).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The SLA's p99 in ms (default: the mix file's, else 10).
    #[arg(long)]
    p99_ms: Option<f64>,
    /// The SLA's largest error share, 0-1 (default: the mix file's, else 0.01).
    #[arg(long)]
    max_error_rate: Option<f64>,
    /// The time-series window (default: the run's length / 150, 100 ms to 10 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    window: Option<Duration>,
    /// The server's Prometheus path for the RSS/CPU trend; "none" to skip.
    #[arg(long, default_value = "/metrics")]
    metrics_path: String,
    #[command(flatten)]
    caps: Caps,
    #[command(flatten)]
    output: Output,
}

/// The bounds every run has.
#[derive(Debug, Args)]
struct Caps {
    /// The most requests one run sends.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// The longest one run lasts (then a partial report).
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    max_time: Duration,
    /// Allow a target outside 127.0.0.0/8 and `::1` (a host you own).
    #[arg(long)]
    allow_remote: bool,
}

#[derive(Debug, Args)]
struct Output {
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write an HTML report (inline SVG plots, no external assets).
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum WsMode {
    /// Opens idle connections and reports the server's RSS growth per connection.
    Idle {
        #[command(flatten)]
        common: WsCommon,
        /// Wait this long after opening before reading the server's RSS.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        settle: Duration,
    },
    /// Subscribes every connection to a topic, publishes, reports latency, loss and duplicates (the default mode).
    Broadcast(Box<BroadcastArgs>),
}

/// A broadcast run's settings (`ws broadcast`, or `ws` alone).
#[derive(Debug, Args)]
struct BroadcastArgs {
    #[command(flatten)]
    common: WsCommon,
    /// Messages to publish.
    #[arg(long, default_value_t = 10, conflicts_with = "duration")]
    messages: u32,
    /// Time between messages (at least 1 ms; below 50 ms several connections take turns publishing, each within the hub's per-connection rate limit).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, conflicts_with = "rate")]
    interval: Duration,
    /// Messages per second (instead of --interval): 0.01 to 1,000.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to publish (instead of --messages): seconds, or a duration like `30s`; messages = rate × duration.
    #[arg(long, value_parser = parse_secs)]
    duration: Option<Duration>,
    /// Topics to spread the connections over (connection i on `TOPIC-(i mod T)`, message k to `TOPIC-(k mod T)`); 1: all on --topic.
    #[arg(long, default_value_t = 1)]
    topics: usize,
    /// How long to wait for deliveries after the last message.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// The topic.
    #[arg(long, default_value = "bench")]
    topic: String,
    /// The SLA's delivery p99 in ms.
    #[arg(long, default_value_t = 50.0)]
    p99_ms: f64,
    /// Extra connections that subscribe and then never read their socket (4 KiB receive buffers).
    #[arg(long, default_value_t = 0)]
    slow_readers: usize,
    /// Pad each message's data with this many bytes.
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
}

#[derive(Debug, Args)]
struct WsCommon {
    /// The hub's WebSocket URL, like `ws://127.0.0.1:9001/ws`; several (repeated or comma-separated) spread the connections over them, and a broadcast publishes to the first.
    #[arg(long, visible_alias = "url", value_delimiter = ',', required = true)]
    target: Vec<String>,
    /// Connections (at most 18,000 per process: a process may hold 20,000 open files).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Broadcast only: child processes that open and read the connections, an even share each (0: this process; default: 0 up to 18,000 connections, else one per 15,000).
    #[arg(long)]
    client_processes: Option<usize>,
    /// Connections per loopback source address (127.0.0.2, .3, ...).
    #[arg(long, default_value_t = 10_000)]
    per_source: usize,
    /// The server's stats path for RSS (JSON `rss_bytes` or Prometheus text); "none" to skip.
    #[arg(long, default_value = "/stats")]
    stats_path: String,
    /// Allow a target outside 127.0.0.0/8 and `::1`.
    #[arg(long)]
    allow_remote: bool,
    /// The longest the run lasts.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    max_time: Duration,
    #[command(flatten)]
    output: Output,
}

impl BroadcastArgs {
    /// The messages and the time between them, from --messages/--duration
    /// and --interval/--rate.
    fn schedule(&self) -> anyhow::Result<(u32, Duration)> {
        let interval = match self.rate {
            None => self.interval,
            Some(r) if r.is_finite() && (0.01..=1_000.0).contains(&r) => Duration::from_secs_f64(1.0 / r),
            Some(r) => anyhow::bail!("--rate: must be 0.01 to 1,000 messages per second, got {r}"),
        };
        let messages = match self.duration {
            None => self.messages,
            Some(d) => {
                let n = (d.as_secs_f64() / interval.as_secs_f64()).round();
                if !(1.0..=100_000.0).contains(&n) {
                    anyhow::bail!(
                        "--duration: {d:?} at one message every {interval:?} is {n} messages; it must come to 1 to 100,000"
                    );
                }
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let n = n as u32;
                n
            }
        };
        Ok((messages, interval))
    }
}

/// A duration given as seconds (`30`, `2.5`) or with a unit (`30s`, `2m`).
fn parse_secs(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"));
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

fn optional_path(p: &str) -> Option<String> {
    (p != "none" && !p.is_empty()).then(|| p.to_owned())
}

fn http_run(c: &HttpCommon, stop: &StopSignal) -> anyhow::Result<HttpRun> {
    let target = Target::parse(&c.target, c.caps.allow_remote)?;
    let mix = match &c.mix {
        Some(p) => Mix::from_file(p)?,
        None => Mix::brisk_server(),
    };
    let base = mix.sla().unwrap_or_default();
    let sla = Sla {
        p99_ms: c.p99_ms.unwrap_or(base.p99_ms),
        max_error_rate: c.max_error_rate.unwrap_or(base.max_error_rate),
    };
    let mut run = HttpRun::new(target, mix)
        .sla(sla)
        .connections(c.connections)
        .timeout(c.timeout)
        .max_requests(c.caps.max_requests)
        .max_time(c.caps.max_time)
        .metrics_path(optional_path(&c.metrics_path))
        .stop_signal(stop.clone());
    if let Some(w) = c.window {
        run = run.window(w);
    }
    Ok(run)
}

fn emit(report: &Report, output: &Output) -> anyhow::Result<ExitCode> {
    if output.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if let Some(path) = &output.report {
        std::fs::write(path, report.to_html()).with_context(|| format!("writing {}", path.display()))?;
        if !output.json {
            println!("HTML report: {}", path.display());
        }
    }
    Ok(if report.verdict.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

async fn suite(
    scale: &str,
    quick: bool,
    database_url: Option<String>,
    json: bool,
    client_processes: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let scale = if quick { Scale::Small } else { Scale::parse(scale)? };
    let options = SuiteOptions {
        scale,
        database_url: database_url.filter(|u| u.starts_with("postgres")),
        client_processes,
        ..SuiteOptions::default()
    };
    let lines = brisk_load::run_suite(&options).await?;
    if json {
        for l in &lines {
            println!("{}", l.to_json());
        }
    } else {
        print!("{}", brisk_load::suite_table(&lines));
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(cli: Cli, stop: StopSignal) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Suite {
            scale,
            quick,
            database_url,
            json,
            client_processes,
        } => suite(&scale, quick, database_url, json, client_processes).await,
        Command::SuiteClient {
            addr,
            first,
            count,
            per_source,
            source_base,
        } => {
            brisk_load::run_suite_client(addr, first, count, per_source, source_base).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::WsClient {
            target,
            topic,
            topics,
            first,
            count,
            per_source,
            source_base,
        } => {
            brisk_load::run_ws_client(&target, &topic, topics, first, count, per_source, source_base).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Http { scenario } => {
            let (report, output) = match &scenario {
                HttpScenario::Load {
                    common,
                    rate,
                    duration,
                } => (
                    http_run(common, &stop)?.load(*rate, *duration).await?,
                    &common.output,
                ),
                HttpScenario::Stress {
                    common,
                    start_rate,
                    step_rate,
                    steps,
                    step_duration,
                } => (
                    http_run(common, &stop)?
                        .stress(*start_rate, *step_rate, *steps, *step_duration)
                        .await?,
                    &common.output,
                ),
                HttpScenario::Spike {
                    common,
                    rate,
                    factor,
                    baseline,
                    spike,
                    after,
                } => (
                    http_run(common, &stop)?
                        .spike(*rate, *factor, *baseline, *spike, *after)
                        .await?,
                    &common.output,
                ),
                HttpScenario::Soak {
                    common,
                    rate,
                    duration,
                } => (
                    http_run(common, &stop)?.soak(*rate, *duration).await?,
                    &common.output,
                ),
                HttpScenario::BreakingPoint {
                    common,
                    start_rate,
                    max_rate,
                    trial_duration,
                    growth,
                    precision,
                    max_trials,
                } => {
                    let search = BreakingPointSearch {
                        start_rate: *start_rate,
                        max_rate: *max_rate,
                        trial_duration: *trial_duration,
                        growth: *growth,
                        precision: *precision,
                        max_trials: *max_trials,
                    };
                    (
                        http_run(common, &stop)?.breaking_point(search).await?,
                        &common.output,
                    )
                }
            };
            emit(&report, output)
        }
        Command::Ws { mode, broadcast } => {
            let mode = mode.unwrap_or(WsMode::Broadcast(broadcast));
            let common = match &mode {
                WsMode::Idle { common, .. } => common,
                WsMode::Broadcast(b) => &b.common,
            };
            let targets = common
                .target
                .iter()
                .map(|t| Target::parse(t, common.allow_remote))
                .collect::<Result<Vec<_>, _>>()?;
            let first = targets.first().cloned().context("--target: give at least one")?;
            let client_processes = common.client_processes.unwrap_or_else(|| {
                if matches!(mode, WsMode::Broadcast { .. })
                    && common.connections > brisk_load::MAX_CONNECTIONS
                {
                    common.connections.div_ceil(15_000)
                } else {
                    0
                }
            });
            let ws = WsRun::new(first)
                .targets(targets)
                .client_processes(client_processes)
                .connections(common.connections)
                .per_source(common.per_source)
                .stats_path(optional_path(&common.stats_path))
                .stop_signal(stop.clone());
            // The time cap: the same stop as Ctrl-C, so the report is partial.
            let cap = common.max_time;
            let timer_stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(cap).await;
                timer_stop.stop();
            });
            let report = match &mode {
                WsMode::Idle { settle, .. } => ws.settle(*settle).idle().await?,
                WsMode::Broadcast(b) => {
                    let (messages, interval) = b.schedule()?;
                    ws.topic(b.topic.clone())
                        .topics(b.topics)
                        .slow_readers(b.slow_readers)
                        .payload_bytes(b.payload_bytes)
                        .sla(Sla {
                            p99_ms: b.p99_ms,
                            max_error_rate: 0.0,
                        })
                        .broadcast(messages, interval, b.drain)
                        .await?
                }
            };
            emit(&report, &common.output)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("brisk-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = StopSignal::new();
    let result = runtime.block_on(async {
        let on_signal = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("brisk-load: stopping (Ctrl-C); printing the partial report");
                on_signal.stop();
            }
        });
        run(cli, stop).await
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("brisk-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}
